"""The admin scenario through the Python client openapi-python-client generated from
openapi/openapi.json: create a user, search for them, create a client, rotate its secret,
query the audit log. Run by tests/clients/run.sh with the generated package on PYTHONPATH.

    BASE=http://127.0.0.1:8080 TOKEN=lka_... python3 scenario.py

Prints one `PASS`/`FAIL` line per check and exits non-zero if any failed.
"""

import os
import sys
import uuid

from latchkey_client import AuthenticatedClient
from latchkey_client.api.audit import list_audit_entries
from latchkey_client.api.clients import create_client, rotate_client_secret
from latchkey_client.api.users import create_user, list_users
from latchkey_client.models import (
    ClientCreatedResponse,
    ClientRequest,
    CreateUserRequest,
    Role,
    RotateSecretRequest,
    SecretRotatedResponse,
    UserResponse,
)
from latchkey_client.types import UNSET

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS python: {name}")
    else:
        failed += 1
        print(f"FAIL python: {name} {detail}")


client = AuthenticatedClient(base_url=os.environ["BASE"] + "/api", token=os.environ["TOKEN"])
tag = uuid.uuid4().hex[:10]

# 1. Create a user.
username = f"py-{tag}"
created = create_user.sync_detailed(
    client=client,
    body=CreateUserRequest(
        username=username,
        email=f"{username}@example.com",
        password="Py-client-pass-9",
        role=Role.PROFESSIONAL,
    ),
)
user = created.parsed
check("create a user (201)", created.status_code == 201 and isinstance(user, UserResponse),
      f"{created.status_code} {created.content[:200]!r}")
if isinstance(user, UserResponse):
    check("the new user has no phone number (absent, not null)",
          user.phone_number is UNSET and b'"phone_number"' not in created.content)

# 2. Search for them (`q` matches the start of a username, email or name).
def search(term):
    found = list_users.sync_detailed(client=client, q=term, limit=200)
    return found, (found.parsed.items if found.status_code == 200 else [])

found, items = search(username)
check("search finds the user", found.status_code == 200 and [u.username for u in items] == [username],
      f"{found.status_code} {[u.username for u in items]}")

# 3. Create a client.
made = create_client.sync_detailed(
    client=client,
    body=ClientRequest(name=f"Py app {tag}", redirect_uris=["https://app.example.com/cb"]),
)
rp = made.parsed
check("create a client (201) with a secret",
      made.status_code == 201 and isinstance(rp, ClientCreatedResponse) and bool(rp.client_secret),
      f"{made.status_code} {made.content[:200]!r}")

# 4. Rotate its secret.
if isinstance(rp, ClientCreatedResponse):
    rotated = rotate_client_secret.sync_detailed(
        id=rp.client_id, client=client, body=RotateSecretRequest(grace_secs=60)
    )
    new = rotated.parsed
    check("rotate the client's secret",
          rotated.status_code == 200 and isinstance(new, SecretRotatedResponse)
          and new.client_secret != rp.client_secret and new.previous_secret_expires_at is not UNSET,
          f"{rotated.status_code} {rotated.content[:200]!r}")

# 5. Query the audit log.
if isinstance(user, UserResponse):
    audit = list_audit_entries.sync_detailed(client=client, action="user_created", limit=200)
    entries = audit.parsed.items if audit.status_code == 200 else []
    check("the audit log has the user's creation",
          any(e.user_id == user.id for e in entries), f"{audit.status_code}")
if isinstance(rp, ClientCreatedResponse):
    audit = list_audit_entries.sync_detailed(client=client, action="client_updated", limit=200)
    entries = audit.parsed.items if audit.status_code == 200 else []
    check("the audit log has the secret rotation",
          any(e.resource == f"client:{rp.client_id}" for e in entries), f"{audit.status_code}")

print(f"python: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
