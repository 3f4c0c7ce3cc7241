"""The kill test's app (tests/test_kill.py): the demo's research agent,
examples/python/agent.py, for `python -m evstore worker STORE --app
agent_app:store`, with the store in $EVS_APP_STORE, its side-effect log in
$EVS_TOOL_LOG ("START <key> <attempt>" before each step's work, "DONE
<key>" once a step it ran has completed: so no START of a key may ever
follow its DONE), and its stand-ins' work scaled by $EVS_AGENT_PACE."""
import os
import sys

import evstore

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "..", "examples", "python"))
import agent  # noqa: E402

agent.LOG = os.environ.get("EVS_TOOL_LOG")
store = evstore.Store(os.environ["EVS_APP_STORE"], poll_interval=0.01)
store.workflow("research", version="1")(agent.research)
