// Driven by tests/system/test_oauth_clients.py: openid-client used as an app and as a resource
// server would use it, against a real `rotor serve`. Prints one JSON object of what it saw.
import * as oidc from 'openid-client'

const env = process.env
const issuer = new URL(env.ROTOR_ISSUER)
const options = { execute: [oidc.allowInsecureRequests] } // loopback http in the test
const app = await oidc.discovery(issuer, 'node-app', undefined, oidc.None(), options)
const resourceServer = await oidc.discovery(
  issuer,
  env.ROTOR_CLIENT_ID,
  undefined,
  oidc.ClientSecretBasic(env.ROTOR_CLIENT_SECRET),
  options,
)
const refreshed = await oidc.refreshTokenGrant(app, env.REFRESH_TOKEN)
const access = await oidc.tokenIntrospection(resourceServer, refreshed.access_token)
const refresh = await oidc.tokenIntrospection(resourceServer, refreshed.refresh_token)
const spent = await oidc.tokenIntrospection(resourceServer, env.REFRESH_TOKEN)
await oidc.tokenRevocation(app, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
const revoked = await oidc.tokenIntrospection(resourceServer, refreshed.access_token)
let reuse = null
try {
  await oidc.refreshTokenGrant(app, refreshed.refresh_token)
} catch (error) {
  reuse = { name: error.name, error: error.error, status: error.status }
}
console.log(JSON.stringify({
  metadata: app.serverMetadata(),
  refreshed: {
    access_token: refreshed.access_token,
    refresh_token: refreshed.refresh_token,
    token_type: refreshed.token_type,
    expires_in: refreshed.expiresIn(),
  },
  introspected: { access, refresh, spent, revoked },
  reuse,
}))
