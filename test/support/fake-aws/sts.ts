import { createHash, randomUUID } from 'node:crypto'

import { AwsError } from './errors.js'

export const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/'

/** STS over the query protocol: only GetCallerIdentity, which needs no permission in IAM. */
export class SecurityTokenService {
  constructor (readonly accountId: string, readonly callerArn: string) {}

  /** Answers with the XML document, or throws for an action the fake does not know. */
  handle (action: string): string {
    if (action !== 'GetCallerIdentity') {
      throw new AwsError('InvalidAction', `Could not find operation ${action} for version 2011-06-15`)
    }
    return [
      `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}">`,
      '<GetCallerIdentityResult>',
      `<Arn>${escapeXml(this.callerArn)}</Arn>`,
      `<UserId>${escapeXml(userIdFor(this.callerArn))}</UserId>`,
      `<Account>${escapeXml(this.accountId)}</Account>`,
      '</GetCallerIdentityResult>',
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>`,
      '</GetCallerIdentityResponse>'
    ].join('')
  }
}

/**
 * A role session's UserId is `<role id>:<session name>`; an IAM user's is its own id. The ids
 * are derived from the ARN so they stay stable across runs.
 */
function userIdFor (arn: string): string {
  const id = createHash('sha256').update(arn).digest('hex').slice(0, 17).toUpperCase()
  const session = /:assumed-role\/[^/]+\/(.+)$/.exec(arn)?.[1]
  return session === undefined ? `AIDA${id}` : `AROA${id}:${session}`
}

export function escapeXml (text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`)
}
