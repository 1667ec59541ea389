/**
 * Masks obvious secrets (authorization headers, password=/token= values, credentials in URLs, Slack tokens, AWS key
 * ids, JWTs) in text that came from a monitored system, before it is stored for people or posted to Slack.
 */
const REDACTIONS: [RegExp, string][] = [
  // Authorization: Bearer abc / Basic abc (header or "authorization":"Bearer abc")
  [/(authorization["']?\s*[:=]\s*["']?(?:bearer|basic|token)\s+)[^\s"',;]+/gi, '$1***'],
  [/(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1***'],
  // password=..., "token": "...", api_key: ...
  [
    /((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi,
    '$1***',
  ],
  // credentials in a URL: scheme://user:pass@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, '$1***@'],
  // Slack tokens
  [/\bxox[abposr]-[A-Za-z0-9-]+/g, '***'],
  // AWS access key ids
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, '***'],
  // JWTs
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+/g, '***'],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of REDACTIONS) out = out.replace(pattern, replacement);
  return out;
}
