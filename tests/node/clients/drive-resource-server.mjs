// Appended by tests/system/test_oauth_clients.py to docs/examples/resource-server.mjs (run as
// one module from this folder, so that its imports resolve here): call the example's functions
// on ACCESS_TOKEN and print what they answered.
const verified = await verifyLocally(process.env.ACCESS_TOKEN)
const introspected = await introspect(process.env.ACCESS_TOKEN)
let afterLogout = null
if (process.env.LOGOUT_URL) {
  const response = await fetch(process.env.LOGOUT_URL, {
    method: 'POST',
    headers: { authorization: `Bearer ${process.env.ACCESS_TOKEN}` },
  })
  if (response.status !== 204) throw new Error(`logout answered ${response.status}`)
  afterLogout = {
    verified: (await verifyLocally(process.env.ACCESS_TOKEN)).sub,
    introspected: await introspect(process.env.ACCESS_TOKEN),
  }
}
console.log(JSON.stringify({ verified, introspected, afterLogout }))
