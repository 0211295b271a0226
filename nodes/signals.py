from django.dispatch import Signal

# Sent with `node_id` when a node answers health checks again (or for the first time), so
# that the scheduler can hand it work at once. Lets nodes stay unaware of jobs.
node_came_online = Signal()
