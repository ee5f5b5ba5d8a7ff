/**
 * Exit codes of every command (README "Exit codes"). Scripts branch on them, so a code never
 * changes meaning once released.
 */
export const EXIT = {
  /** Success; also a clean stop of the agent on SIGTERM/SIGINT. */
  ok: 0,
  /** Anything else that went wrong (the agent failed at run time, an unexpected answer). */
  failure: 1,
  /** Bad usage or configuration: an unknown flag, a value out of range, no token, a bad store edit. */
  usage: 2,
  /** `get`: no such secret, parameter, version or field. `store delete`: no such entry. */
  notFound: 3,
  /** `get`: the agent refused the token (401) or denied access (403). */
  denied: 4,
  /** Nothing answered in time (connection refused, timeout), or the agent answered 429 or 5xx. */
  unreachable: 5,
  /** `health`: the agent answered, but not 200 (`/ready` says not ready yet). A stopping agent takes no connection: 5. */
  unhealthy: 6
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]
