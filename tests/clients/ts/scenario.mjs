// @ts-check
// The admin scenario through openapi-fetch, typed by the openapi-typescript types
// generated from openapi/openapi.json (schema.d.ts; `tsc -p .` checks this file against
// them): create a user, search for them, create a client, rotate its secret, query the
// audit log. Run by tests/clients/run.sh:
//
//   BASE=http://127.0.0.1:8080 TOKEN=lka_... node scenario.mjs
import createClient from "openapi-fetch";

/** @typedef {import("./schema").paths} paths */

/** @type {import("openapi-fetch").Client<paths>} */
const api = createClient({
  baseUrl: `${process.env.BASE}/api`,
  headers: { Authorization: `Bearer ${process.env.TOKEN}` },
});

let passed = 0;
let failed = 0;
/** @param {string} name @param {boolean} ok @param {unknown} [detail] */
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`PASS ts: ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ts: ${name} ${JSON.stringify(detail ?? "")}`);
  }
}

const tag = Math.random().toString(36).slice(2, 12);
const username = `ts-${tag}`;

// 1. Create a user.
const created = await api.POST("/admin/v1/users", {
  body: { username, email: `${username}@example.com`, password: "Ts-client-pass-9", role: "enterprise" },
});
const user = created.data;
check("create a user (201)", created.response.status === 201 && user?.username === username, created.error);
check("the new user has no phone number (absent, not null)", user !== undefined && !("phone_number" in user));

// 2. Search for them (`q` matches the start of a username, email or name).
/** @param {string} term */
async function search(term) {
  const found = await api.GET("/admin/v1/users", { params: { query: { q: term, limit: 200 } } });
  return { found, items: found.data?.items ?? [] };
}
const { found, items } = await search(username);
check("search finds the user", found.response.status === 200 && items.length === 1 && items[0].id === user?.id, found.error);

// 3. Create a client.
const made = await api.POST("/admin/v1/clients", {
  body: { name: `TS app ${tag}`, redirect_uris: ["https://app.example.com/cb"] },
});
const rp = made.data;
check("create a client (201) with a secret", made.response.status === 201 && !!rp?.client_secret, made.error);

// 4. Rotate its secret.
if (rp) {
  const rotated = await api.POST("/admin/v1/clients/{id}/secret", {
    params: { path: { id: rp.client_id } },
    body: { grace_secs: 0 },
  });
  check(
    "rotate the client's secret (no grace: no previous_secret_expires_at)",
    rotated.response.status === 200 &&
      rotated.data?.client_secret !== rp.client_secret &&
      rotated.data !== undefined &&
      !("previous_secret_expires_at" in rotated.data),
    rotated.error,
  );
}

// 5. Query the audit log.
if (user) {
  const audit = await api.GET("/admin/v1/audit", { params: { query: { user_id: user.id, limit: 50 } } });
  const actions = (audit.data?.items ?? []).map((e) => e.action);
  check("the audit log has the user's creation", audit.response.status === 200 && actions.includes("user_created"), actions);
}

console.log(`ts: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
