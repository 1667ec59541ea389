import type { App } from '@slack/bolt';
import { register as registerActions } from './actions/index.js';
import { register as registerCommands } from './commands/index.js';
import type { ListenerDeps } from './deps.js';
import { register as registerEvents } from './events/index.js';

/** Registers every listener kind. */
export function registerListeners(app: App, deps: ListenerDeps): void {
  registerActions(app, deps);
  registerCommands(app, deps);
  registerEvents(app, deps);
}
