"""Nobody but the operator writes the audit record: real kubectl as a namespace editor
and as the cluster admin, against the sandbox calling the operator's webhooks."""

from __future__ import annotations

import json

import pytest

from tests.integration.admission.conftest import (
    OPERATOR,
    SecureSandbox,
    granted,
    rbac_refused,
)
from tests.integration.harness import eventually
from tests.integration.operator.scenarios import policy, technology

pytestmark = pytest.mark.integration

DENIED = 'admission webhook "mltrlauditrecords.validate.mltrl.dev" denied the request: '


def test_an_editor_and_an_admin_cannot_write_or_delete_the_record(
    sandbox: SecureSandbox, namespace: str
) -> None:
    sandbox.apply(policy(f"{namespace}-prod", namespace))
    sandbox.as_user("alice", "apply", "-f", "-", check=True,
                    input=json.dumps(technology("scorer", namespace, entry_level=3)))
    chunk = f"{namespace}.scorer.0000"
    stored = eventually(lambda: sandbox.get("mltrlaudit", chunk), what="the record's chunk")
    assert stored["spec"]["entries"][0]["kind"] == "entry"

    edit = [{"op": "replace", "path": "/spec/entries/0/reason", "value": "never happened"}]
    # The chart lets no editor near the records: RBAC refuses mallory first.
    rbac_refused(sandbox.as_user("mallory", "patch", "mltrlaudit", chunk, "--type=json",
                                 "-p", json.dumps(edit)), "mallory", "mltrlauditrecords")
    rbac_refused(sandbox.as_user("mallory", "delete", "mltrlaudit", chunk), "mallory",
                 "mltrlauditrecords")
    # The webhook refuses her all the same once RBAC would let her, and the admin too.
    with granted(sandbox, f"{namespace}-record-writer", ["mallory"], ["mltrlauditrecords"]):
        for user in ("mallory", "admin"):
            refused = sandbox.kubectl("--user", user, "patch", "mltrlaudit", chunk, "--type=json",
                                      "-p", json.dumps(edit), check=False)
            assert refused.returncode != 0
            assert DENIED in refused.stderr, refused.stderr
            assert (f"{chunk}: Forbidden: audit records are written only by the operator "
                    f"({OPERATOR}); {user} may not update them") in refused.stderr

            deleted = sandbox.kubectl("--user", user, "delete", "mltrlaudit", chunk, check=False)
            assert deleted.returncode != 0 and "may not delete them" in deleted.stderr

        forged = {
            "apiVersion": "mltrl.dev/v1alpha1", "kind": "MLTRLAuditRecord",
            "metadata": {"name": f"{namespace}.scorer.0001"},
            "spec": {"namespace": namespace, "technology": "scorer", "chunk": 1, "entries": []},
        }
        created = sandbox.as_user("mallory", "apply", "-f", "-", input=json.dumps(forged))
        assert created.returncode != 0 and "may not create them" in created.stderr

    after = sandbox.get("mltrlaudit", chunk)
    assert after is not None and after["spec"] == stored["spec"]
    assert sandbox.get("mltrlaudit", f"{namespace}.scorer.0001") is None
