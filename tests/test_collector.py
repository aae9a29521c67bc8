"""facexai.collector: importing facexai leaves torch's objects in the collector's permanent generation."""
from fresh_process import run_json

CHILD = """
import gc, json, sys
if sys.argv[1] == "off":
    gc.disable()
import facexai, torch
scanned = gc.get_objects()
print(json.dumps({"frozen": gc.get_freeze_count(), "scanned": len(scanned), "enabled": gc.isenabled(),
                  "torch_scanned": any(o is torch.__dict__ for o in scanned)}))
"""


def run(collector_env: str | None, before: str = "on") -> dict:
    """The child's report with ``FACEXAI_GC`` set to ``collector_env`` (None: unset), the collector on or off."""
    return run_json(CHILD, before, env={"FACEXAI_GC": collector_env}, timeout=300)


def test_import_freezes_torchs_objects_and_reenables_the_collector():
    got = run(None)
    assert got["enabled"]
    assert not got["torch_scanned"]
    assert got["frozen"] > 10 * got["scanned"], got  # nearly everything the imports made is skipped from now on


def test_default_leaves_the_collector_alone():
    got = run("default")
    assert got["enabled"] and got["frozen"] == 0 and got["torch_scanned"]


def test_a_disabled_collector_stays_disabled():
    assert not run(None, before="off")["enabled"]
