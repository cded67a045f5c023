// Signing in with the region's identity provider: the OAuth 2.0 authorization code
// flow with PKCE (S256), as a SMART standalone launch. The console is a public client
// (no secret can be kept in a browser), so PKCE is what ties the code to this tab:
// only the tab that made the verifier can exchange the code. The issuer's endpoints,
// the client id and the redirect URI come from the gateway (settings.json `oauth`,
// the same as its .well-known/smart-configuration).

// The flow's secrets while the browser is at the issuer; removed on return.
const FLOW = 'cupola.oauth';

// A readable refusal: an i18n key and its arguments (dom.js showError shows it).
class SignInError extends Error {
  constructor(key, args) {
    super(key);
    this.key = key;
    this.args = args;
  }
}

function encodeBase64Url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// `n` random bytes, base64url: 32 give a 43-character verifier (RFC 7636's minimum).
function random(n) {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  return encodeBase64Url(bytes);
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return encodeBase64Url(new Uint8Array(digest));
}

// Leaves for the issuer's sign-in page; the browser comes back to the redirect URI.
export async function begin(o) {
  // crypto.subtle exists only in a secure context (https, or http on localhost).
  if (!window.isSecureContext || !crypto.subtle) throw new SignInError('signin.oauth-insecure');
  const verifier = random(32);
  const state = random(16);
  sessionStorage.setItem(FLOW, JSON.stringify({ state, verifier }));
  const to = new URL(o.authorizeUrl);
  const params = {
    response_type: 'code', client_id: o.clientId, redirect_uri: o.redirectUri, scope: o.scope,
    state, aud: o.aud, code_challenge: await challengeOf(verifier), code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(params)) to.searchParams.set(k, v);
  location.assign(to.toString());
}

// The issuer's answer in this page's URL (`?code=…&state=…` or `?error=…`), or null.
export function returned() {
  const q = new URLSearchParams(location.search);
  return q.has('code') || q.has('error') ? q : null;
}

// Exchanges the code of the issuer's answer `q` for the access token. The URL is
// cleaned first, so that a reload or a bookmark never replays a used code.
export async function finish(o, q) {
  let flow = null;
  try { flow = JSON.parse(sessionStorage.getItem(FLOW) || 'null'); } catch { /* none */ }
  sessionStorage.removeItem(FLOW);
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  if (q.has('error')) {
    throw new SignInError('signin.oauth-refused', { error: q.get('error'), description: q.get('error_description') || '' });
  }
  // A state this tab did not send: an answer meant for another flow, or forged.
  if (!flow || q.get('state') !== flow.state) throw new SignInError('signin.oauth-state');
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code: q.get('code'), redirect_uri: o.redirectUri,
    client_id: o.clientId, code_verifier: flow.verifier,
  });
  return exchange(o.tokenUrl, body);
}

async function exchange(tokenUrl, body) {
  let r;
  try {
    r = await fetch(tokenUrl, {
      method: 'POST', body, credentials: 'omit',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    });
  } catch (e) {
    throw new SignInError('signin.oauth-unreachable', { detail: String(e.message || e) });
  }
  let answer = {};
  try { answer = await r.json(); } catch { /* not JSON: said below */ }
  if (!r.ok || typeof answer.access_token !== 'string') {
    const error = answer.error || `HTTP ${r.status}`;
    throw new SignInError('signin.oauth-exchange', { error, description: answer.error_description || '' });
  }
  return answer.access_token;
}
