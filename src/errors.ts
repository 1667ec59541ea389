/** Errors with a stable string `code`, so callers and logs can tell failures apart without parsing messages. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

/** A state change the incident state machine does not allow. */
export class TransitionError extends AppError {
  constructor(message: string) {
    super('invalid_transition', message);
    this.name = 'TransitionError';
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super('not_found', message);
    this.name = 'NotFoundError';
  }
}

/** A dependency (Postgres, Redis, Slack) is unreachable; the caller should retry later. */
export class UnavailableError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
    this.name = 'UnavailableError';
  }
}
