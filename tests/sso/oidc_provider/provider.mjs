// Loopback OpenID Connect provider for the Fleetdeck SSO tests.
//
// Runs a real `oidc-provider` instance (the OpenID certified implementation)
// over plain HTTP on 127.0.0.1 so that tests can drive mozilla-django-oidc
// end to end instead of mocking it. Start it through tests/sso/provider.py;
// running it by hand also works:
//
//   OIDC_PORT=9000 OIDC_CONFIG=/path/to/config.json node provider.mjs
//
// Environment:
//   OIDC_PORT    TCP port to listen on; 0 lets the kernel pick a free one.
//   OIDC_EXIT_ON_STDIN_EOF  When "1", exit once stdin is closed.
//   OIDC_CONFIG  Path to the JSON configuration file:
//     {
//       "clients": [{"client_id", "client_secret", "redirect_uris",
//                    "post_logout_redirect_uris", ...other client metadata}],
//       "accounts": [{"sub", "email", "email_verified"?, "name", "given_name",
//                     "family_name", "preferred_username", "groups",
//                     "password"?}]
//     }
//   Clients are read once at start-up. Accounts are re-read on every lookup,
//   so a test can rewrite the file (e.g. change groups) between two logins.
//
// Once listening it prints `READY http://127.0.0.1:<port>` on stdout.
//
// Scope `openid email profile groups` yields email, email_verified, name,
// given_name, family_name, preferred_username and groups in both the ID token
// and the userinfo response. Interactions: GET /interaction/<uid> shows a
// form with fields `login` and `password`; POST /interaction/<uid>/login
// finishes the login, POST /interaction/<uid>/abort denies access. Consent is
// granted automatically.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const MAX_FORM_BYTES = 64 * 1024;

const port = Number.parseInt(process.env.OIDC_PORT ?? '', 10);
const configPath = process.env.OIDC_CONFIG;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('OIDC_PORT must be set to a TCP port number (0 picks a free port)');
  process.exit(2);
}
if (!configPath) {
  console.error('OIDC_CONFIG must be set to the path of the JSON configuration file');
  process.exit(2);
}

/** Read the configuration file anew, so edits made by a test take effect. */
function readConfig() {
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  return {
    clients: Array.isArray(config.clients) ? config.clients : [],
    accounts: Array.isArray(config.accounts) ? config.accounts : [],
  };
}

/** Find a configured account by its subject identifier. */
function accountBySub(sub) {
  return readConfig().accounts.find((account) => account.sub === sub);
}

/** Find a configured account by what a user may type as a login. */
function accountByLogin(login) {
  const wanted = String(login ?? '').trim();
  if (!wanted) return undefined;
  return readConfig().accounts.find((account) => account.sub === wanted
    || account.preferred_username === wanted
    || (typeof account.email === 'string'
      && account.email.toLowerCase() === wanted.toLowerCase()));
}

/** Return the claims of an account, as oidc-provider expects from findAccount. */
function claimsOf(account) {
  // Every claim is returned; oidc-provider itself filters them down to what
  // the granted scopes allow, separately for the ID token and userinfo.
  return {
    sub: account.sub,
    email: account.email,
    email_verified: account.email_verified ?? true,
    name: account.name,
    given_name: account.given_name,
    family_name: account.family_name,
    preferred_username: account.preferred_username,
    groups: Array.isArray(account.groups) ? account.groups : [],
  };
}

/** Make a fresh RS256 signing key; tests need no stable key across runs. */
function makeSigningJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `test-${randomBytes(6).toString('hex')}`,
    use: 'sig',
    alg: 'RS256',
  };
}

/** Grant everything the current authorization request asks for. */
async function autoGrant(ctx) {
  const { oidc } = ctx;
  const accountId = oidc.account.accountId;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  // A grant left in the session by a different account must not be reused:
  // oidc-provider refuses a grant whose account does not match the session.
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new oidc.provider.Grant({ accountId, clientId });
  }
  // The tests stand for a first-party application, so consent is implied;
  // this keeps the login form the only step a test has to automate.
  const scopes = [...oidc.requestParamOIDCScopes].join(' ');
  if (scopes) grant.addOIDCScope(scopes);
  const claims = [...oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

/** Escape text for safe inclusion in HTML. */
function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (char) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[char]);
}

/** Wrap page content into a minimal HTML document. */
function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

/** Render the login form of an interaction, with an optional error message. */
function loginPage(uid, details, error) {
  const client = escapeHtml(details.params.client_id);
  const errorHtml = error ? `<p id="login-error" class="error">${escapeHtml(error)}</p>\n` : '';
  return page('Sign in', `<p>Sign in to continue to <code>${client}</code>.</p>
${errorHtml}<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Login <input type="text" name="login" autocomplete="username" autofocus></label>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>
<form id="abort-form" method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

/** Send a complete HTML response. */
function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

/** Read an application/x-www-form-urlencoded request body. */
async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Check a submitted password against the account's configured one, if any. */
function passwordMatches(account, password) {
  // Accounts without a configured password accept any password, which keeps
  // the common test case short.
  return account.password === undefined || account.password === password;
}

const config = readConfig();
if (!config.clients.length) {
  console.error(`no clients configured in ${configPath}`);
  process.exit(2);
}

let provider;

/** Serve the login/consent interaction pages that oidc-provider redirects to. */
async function handleInteraction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Bad request', '<p>Interaction mismatch.</p>'));
    return;
  }

  if (action === undefined && req.method === 'GET') {
    if (details.prompt.name === 'consent') {
      // Normally unreachable since autoGrant pre-approves every request, but
      // an explicit prompt=consent still lands here: approve it right away.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({
          accountId: details.session.accountId,
          clientId: details.params.client_id,
        });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, {
        mergeWithLastSubmission: true,
      });
      return;
    }
    sendHtml(res, 200, loginPage(uid, details));
    return;
  }

  if (req.method !== 'POST' || (action !== 'login' && action !== 'abort')) {
    sendHtml(res, 405, page('Method not allowed', '<p>Unsupported interaction request.</p>'));
    return;
  }

  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }

  const form = await readForm(req);
  const account = accountByLogin(form.get('login'));
  if (!account || !passwordMatches(account, form.get('password') ?? '')) {
    sendHtml(res, 200, loginPage(uid, details, 'Invalid login or password.'));
    return;
  }
  await provider.interactionFinished(req, res, {
    login: { accountId: account.sub },
  }, { mergeWithLastSubmission: false });
}

const server = http.createServer();

server.listen(port, HOST, () => {
  const issuer = `http://${HOST}:${server.address().port}`;

  provider = new Provider(issuer, {
    clients: config.clients,
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      // Either method works for a client with a secret: oidc-provider treats
      // client_secret_basic and client_secret_post as interchangeable.
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // Only the authorization code flow, which is all mozilla-django-oidc uses.
    responseTypes: ['code'],
    jwks: { keys: [makeSigningJwk()] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // By default scope-requested claims go only to userinfo when an access
    // token is issued; the tests want them in the ID token as well.
    conformIdTokenClaims: false,
    async findAccount(ctx, sub) {
      if (!accountBySub(sub)) return undefined;
      return {
        accountId: sub,
        // Looked up again here, so the claims reflect the file at the time
        // the ID token or userinfo response is produced.
        async claims() {
          const account = accountBySub(sub);
          return account ? claimsOf(account) : { sub };
        },
      };
    },
    loadExistingGrant: autoGrant,
    pkce: {
      methods: ['S256'],
      // mozilla-django-oidc only sends PKCE when OIDC_USE_PKCE is on.
      required: () => false,
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.body = page('Sign out', `<p>Sign out from ${escapeHtml(ctx.host)}?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p id="logout-success">You are signed out.</p>');
        },
      },
    },
    routes: {
      authorization: '/auth',
      token: '/token',
      userinfo: '/me',
      jwks: '/jwks',
      end_session: '/session/end',
    },
    cookies: {
      // Distinct names so they cannot clash with the relying party's cookies:
      // cookies are not isolated by port and both servers live on 127.0.0.1.
      names: {
        session: 'op_session',
        interaction: 'op_interaction',
        resume: 'op_interaction_resume',
      },
      keys: [randomBytes(32).toString('hex')],
      // SameSite=None requires Secure in browsers, impossible over plain
      // HTTP; Lax still lets top-level redirects carry the cookies.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 900,
      Session: 86400,
      Grant: 86400,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: <span class="${escapeHtml(key)}">${escapeHtml(value)}</span></p>`)
        .join('\n');
      ctx.body = page('Error', rows);
    },
  });

  // Surface provider-side failures in the log that the Python helper keeps.
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'end_session.error']) {
    provider.on(event, (...args) => {
      const error = args.find((arg) => arg instanceof Error);
      const text = [error?.message, error?.error_description, error?.error_detail]
        .filter(Boolean).join(' - ');
      console.error(`${event}: ${text}`);
    });
  }

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const { pathname } = new URL(req.url, issuer);
    const match = /^\/interaction\/([^/]+)(?:\/([^/]+))?$/.exec(pathname);
    if (!match) {
      callback(req, res);
      return;
    }
    handleInteraction(req, res, match[1], match[2]).catch((error) => {
      console.error(`interaction error: ${error.message}`);
      if (!res.headersSent) {
        sendHtml(res, 400, page('Error', `<p class="error">${escapeHtml(error.message)}</p>`));
      } else {
        res.end();
      }
    });
  });

  // Static clients are only validated when first used; check them now so a
  // bad test configuration fails at start-up with a clear message.
  Promise.all(config.clients.map((client) => provider.Client.find(String(client.client_id))))
    .then((found) => {
      const missing = config.clients.filter((_, index) => !found[index]);
      if (missing.length) throw new Error(`client ${missing[0].client_id} could not be loaded`);
      console.log(`READY ${issuer}`);
    })
    .catch((error) => {
      console.error(`invalid client configuration: ${error.message} ${error.error_description ?? ''}`);
      process.exit(1);
    });
});

server.on('error', (error) => {
  console.error(`cannot listen on ${HOST}:${port}: ${error.message}`);
  process.exit(1);
});

/** Close the server and exit. */
function shutdown() {
  server.close(() => process.exit(0));
  // Keep-alive connections can hold close() open; tests must not wait on them.
  setTimeout(() => process.exit(0), 1000).unref();
  server.closeAllConnections?.();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// provider.py holds our stdin open and asks for this: when its process dies,
// even without cleanup, stdin closes and the provider goes with it.
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}
