// Generates tests/vectors/bcryptjs.json: password hashes made by the real bcryptjs npm package,
// as an Express app stores them. Run once, by hand; the test suite reads only the JSON.
//
//   mkdir /tmp/bcryptjs && cd /tmp/bcryptjs && npm init -y
//   npm install bcryptjs@3 bcryptjs2@npm:bcryptjs@2
//   NODE_PATH=/tmp/bcryptjs/node_modules node tests/vectors/make_bcryptjs_vectors.js \
//     > tests/vectors/bcryptjs.json
"use strict";

const packages = {
  // bcryptjs 2.x (most Express apps in the wild) writes $2a$; 3.x writes $2b$.
  "bcryptjs@2": require("bcryptjs2"),
  "bcryptjs@3": require("bcryptjs"),
};

const passwords = [
  { name: "ascii", password: "correct horse battery staple" },
  { name: "unicode", password: "pässwörd-日本語-🔑" },
  // 99 bytes: bcrypt reads only the first 72, so the old system accepted any such suffix.
  { name: "longer_than_72_bytes", password: "a".repeat(70) + "bcdefghijklmnopqrstuvwxyz0123" },
];

const vectors = [];
for (const [library, bcrypt] of Object.entries(packages)) {
  for (const { name, password } of passwords) {
    const cost = 10; // bcryptjs' documented default, and what most apps use
    vectors.push({
      library,
      name,
      password,
      hash: bcrypt.hashSync(password, bcrypt.genSaltSync(cost)),
    });
  }
}
process.stdout.write(
  JSON.stringify({ generator: "tests/vectors/make_bcryptjs_vectors.js", node: process.version, vectors }, null, 2) + "\n",
);
