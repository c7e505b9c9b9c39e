"""The hostile-function suite: one function per attack, each contained, reported with a clear
status, and harmless to a well-behaved function that keeps answering meanwhile (harness.py).

Every known attack on the runtime is listed here, with where its test lives:

- another invocation of the same version: its memory (/proc/PID/mem), signals, its /tmp, the
  zygote's memory read-write ........................................ test_peer_attacks.py
- work that outlives its invocation (a detached loop after return or failure), /tmp files of
  a killed worker left charged to its cgroup slot ................... test_leftover_attacks.py
- files outside the function's own, other functions' /tmp, the host's sockets with
  `network: false`, the platform's environment ....................... test_escape_attacks.py
- ptrace, mount, new namespaces, seccomp'd syscalls ................... test_syscall_attacks.py
- memory past the limit, fork bomb, a timeout that ignores SIGTERM, 1 GB of output, file
  descriptors ........................................................ test_resource_attacks.py
- the worker's socket and the zygote's control socket (garbage, oversized or forged frames),
  the worker's log area (shrunk under the platform's mapping), a platform crash loop
  ....................... test_channel_attacks.py (and tests/functional/runtime/test_robustness.py)
- the network beyond what `network` allows ........................... test_network_attacks.py
- the API beyond what the function's `permissions` allow, its token widened or used after
  expiry, an admin token anywhere in the sandbox ...... tests/functional/test_function_identity.py
- another function's secret (its processes' environment, the data dir's key file and
  database) ............................................. tests/functional/test_secrets.py

Crashes that are not attacks (exit, segfault, import failures, a killed zygote) stay in
tests/functional/runtime/test_robustness.py.
"""
