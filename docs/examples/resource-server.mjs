// A Node resource server that accepts Rotor's access tokens (docs/resource-servers.md).
// `verifyLocally` checks a token with the keys of Rotor's JWKS (no request per call);
// `introspect` asks Rotor, so a token whose session has ended is refused at once.
// Needs the npm packages openid-client and jose.
import * as oidc from 'openid-client'
import { createRemoteJWKSet, jwtVerify } from 'jose'

const issuer = new URL(process.env.ROTOR_ISSUER)
// Plain http is for a Rotor on this machine only (development); production issuers are https.
const options = issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}
const config = await oidc.discovery(
  issuer,
  process.env.ROTOR_CLIENT_ID,
  undefined,
  oidc.ClientSecretBasic(process.env.ROTOR_CLIENT_SECRET),
  options,
)
const metadata = config.serverMetadata()
// Keeps the key set in memory and fetches it again when a token names a kid it does not hold
// (at most once per cooldownDuration, 30 s by default): a new signing key is picked up at once.
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), { cacheMaxAge: 10 * 60 * 1000 })

export async function verifyLocally(token) {
  const { payload } = await jwtVerify(token, jwks, {
    issuer: metadata.issuer,
    audience: process.env.ROTOR_AUDIENCE,
    typ: 'at+jwt',
    algorithms: metadata.id_token_signing_alg_values_supported,
    requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
    clockTolerance: 30,
  })
  return payload
}

export async function introspect(token) {
  const answer = await oidc.tokenIntrospection(config, token, { token_type_hint: 'access_token' })
  return answer.active && answer.token_type === 'access_token' ? answer : null
}
