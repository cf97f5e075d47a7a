// A real OpenID provider for the bot server's sign-in tests: oidc-provider (a certified
// implementation) over TLS on loopback, with the clients, users and signing keys the test
// gives it, and a login step that signs in the user named by `login_hint` with the
// authentication methods (`amr`) the test chose for that user (no form to fill in).
//
// Environment: PORT, CERT and KEY (PEM files), KEYS_DIR and KIDS (the signing keys by id,
// the first one signs; a key not yet in KEYS_DIR is generated and kept there, so a restart
// with `new,old` rotates), CLIENTS and USERS (JSON).
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import { SignJWT, decodeJwt, importJWK } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `https://127.0.0.1:${port}`;
const users = JSON.parse(process.env.USERS);
const API = 'urn:generalbot:api';

function key(kid) {
  const path = `${process.env.KEYS_DIR}/${kid}.json`;
  if (!fs.existsSync(path)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path, JSON.stringify({ ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }), { mode: 0o600 });
  }
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}
const jwks = { keys: process.env.KIDS.split(',').map(key) };

const provider = new Provider(issuer, {
  clients: JSON.parse(process.env.CLIENTS),
  jwks,
  cookies: { keys: ['generalbot-test-cookie-key'] },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: { acr: null, openid: ['sub', 'amr', 'auth_time'], email: ['email', 'email_verified'], groups: ['groups'] },
  // The contexts a test user may sign in with; `phrh` is the one the bot server is told
  // means a second factor.
  acrValues: ['urn:password', 'phrh'],
  scopes: ['openid', 'email', 'groups'],
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'api',
        audience: resource === API ? 'generalbot-api' : 'another-api',
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, groups: user.groups ?? [] };
      },
    };
  },
  ttl: { AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 300, Session: 600, Grant: 600 },
});

// A user marked `forgeNonce` gets an ID token whose nonce was changed and signed again
// with the provider's own key: a well-signed token that does not answer the sign-in.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path !== '/token' || !ctx.body?.id_token) return;
  const claims = decodeJwt(ctx.body.id_token);
  if (!users[claims.sub]?.forgeNonce) return;
  const jwk = jwks.keys[0];
  const forged = await new SignJWT({ ...claims, nonce: 'forged-by-the-test' })
    .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
    .sign(await importJWK(jwk, 'RS256'));
  ctx.body = { ...ctx.body, id_token: forged };
});

// The login and consent steps, answered at once for the user the client hinted at.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    const id = params.login_hint;
    if (!users[id]) {
      res.statusCode = 400;
      return res.end(`no test user ${id}`);
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: id, amr: users[id].amr ?? ['pwd'], acr: users[id].acr ?? 'urn:password' } },
      { mergeWithLastSubmission: false },
    );
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
https
  .createServer(
    { cert: fs.readFileSync(process.env.CERT), key: fs.readFileSync(process.env.KEY) },
    (req, res) => {
      if (req.url.startsWith('/interaction/')) {
        interaction(req, res).catch((e) => {
          res.statusCode = 500;
          res.end(String(e));
        });
      } else {
        callback(req, res);
      }
    },
  )
  .listen(port, '127.0.0.1', () => console.log(`provider ${issuer} ready`));
