/**
 * An error the fake answers with, carrying the AWS error code and HTTP status. Handlers throw
 * it; the server turns it into a JSON 1.1 or query-protocol error body.
 */
export class AwsError extends Error {
  override readonly name = 'AwsError'

  constructor (readonly code: string, message: string, readonly status = 400) {
    super(message)
  }
}

export function validationError (message: string): AwsError {
  return new AwsError('ValidationException', message)
}

/**
 * AWS names the member in lowerCamelCase in its validation messages, whatever the wire name.
 */
export function constraintError (member: string, value: unknown, constraint: string): AwsError {
  const shown = value === undefined ? 'null' : `'${String(value)}'`
  const camel = member.charAt(0).toLowerCase() + member.slice(1)
  return validationError(
    `1 validation error detected: Value ${shown} at '${camel}' failed to satisfy constraint: ${constraint}`
  )
}

/**
 * Word for word what IAM says, principal ARN and account id included, so tests can check that
 * the agent never passes such a message on to its clients.
 */
export function accessDenied (callerArn: string, action: string, resource: string): AwsError {
  return new AwsError(
    'AccessDeniedException',
    `User: ${callerArn} is not authorized to perform: ${action} on resource: ${resource} ` +
      `because no identity-based policy allows the ${action} action`
  )
}
