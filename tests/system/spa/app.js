// A front end using Rotor's cookie transport: the refresh token never reaches this script.
async function call(base, path, options) {
  const response = await fetch(base + path, { credentials: "include", ...options });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

function post(json, headers) {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(headers || {}) },
    body: JSON.stringify(json),
  };
}

const CSRF = { "X-CSRF-Token": "1" };

window.runFlow = async function (base, email, password) {
  const out = {};
  try {
    out.register = (await call(base, "/v1/register", post({ email, password }))).status;
    const login = await call(base, "/v1/login",
      post({ email, password, transport: "cookie", device_name: "browser", platform: "web" }));
    out.login = login.status;
    out.refresh_token_in_body = "refresh_token" in (login.body || {});
    const bearer = { Authorization: "Bearer " + login.body.access_token };
    out.me = (await call(base, "/v1/me", { headers: bearer })).status;
    const refreshed = await call(base, "/v1/refresh", post({}, CSRF));
    out.refresh = refreshed.status;
    out.same_session = refreshed.body && refreshed.body.session_id === login.body.session_id;
    out.refresh_again = (await call(base, "/v1/refresh", post({}, CSRF))).status;
    out.logout = (await call(base, "/v1/logout", post({}, CSRF))).status;
    const after = await call(base, "/v1/refresh", post({}, CSRF));
    out.after_logout = [after.status, after.body && after.body.message];
  } catch (error) {
    out.error = String(error);
  }
  return out;
};
