"""Imported last by the fork server (see fanout.WorkerPool): its heap is frozen before it forks any worker.

A forked worker shares the fork server's pages, and a garbage collection
walks (and so writes to) every object it tracks: a worker's first collection
then copied the fork server's whole heap and took ~150 ms, so in a storm of
kills replacements died before they were ready. Frozen objects are never
walked (`gc.freeze`, the same reason as in api.app.warm_server_process).
Only the fork server imports this module; it forks and does nothing else.
"""
import gc

gc.collect()
gc.freeze()
