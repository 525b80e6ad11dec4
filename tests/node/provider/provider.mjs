// A real OpenID Connect provider (panva's oidc-provider, certified by the OpenID Foundation) for
// Rotor's end-to-end test: one confidential test client, one static account, the package's own
// development login and consent pages. Every start signs with a freshly generated key, so a
// restart is a key rotation. Usage: node provider.mjs <port>; prints "ready <issuer>" once
// listening, and logs nothing else that matters.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const account = {
  accountId: 'ada',
  async claims() {
    return { sub: 'ada', email: 'ada@example.com', email_verified: true };
  },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'rotor-test',
    client_secret: 'rotor-test-secret',
    redirect_uris: [`http://127.0.0.1:${port}/callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID()] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  // The scope's claims in the ID token itself, as native sign-in SDKs hand them to apps.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return id === account.accountId ? account : undefined;
  },
});
// Quiet: the test reads stdout for the ready line only.
provider.on('server_error', (ctx, error) => console.error('server_error', error));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
