"""The periodic schedule for `rq cron` (rq >= 2.5): `rq cron mets.cron_config --url $REDIS_URL`.

worker.py's scheduler process loads this same module. Run exactly one scheduler per install;
the jobs are idempotent, so a second one would waste work but do no harm.
"""
from rq import cron

from mets.config import Config
from mets.jobs import PERIODIC
from mets.queueing import queue_names

# On the critical queue: the tick and the sweep are short, and a backlog of ordinary mail must
# not hold back the SLA points (and the breach emails) they produce.
for _name, (_fn, _period_key) in PERIODIC.items():
    cron.register(_fn, queue_name=queue_names(Config.RQ_QUEUE_PREFIX)[0], interval=getattr(Config, _period_key),
                  result_ttl=0)
