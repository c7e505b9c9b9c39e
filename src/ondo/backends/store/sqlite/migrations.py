"""Every migration of the SQLite store, in the order they apply; never edit an applied one.

A migration is (unique name, script); the names are those each domain module used when it
migrated its own tables, so databases made by older versions carry on where they stopped.
"""

from __future__ import annotations

from ondo.backends.store.base import Migration

MIGRATIONS: list[Migration] = [
    # --- tokens (security/tokens.py) --------------------------------------------------
    (
        "tokens-0001",
        """
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY, principal TEXT NOT NULL, namespace TEXT NOT NULL,
            created_at REAL NOT NULL)
        """,
    ),
    # --- functions and invocations ----------------------------------------------------
    (
        "functions-0001",
        """
        CREATE TABLE functions (
            namespace TEXT NOT NULL, name TEXT NOT NULL, current_version INTEGER NOT NULL,
            app TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (namespace, name));
        CREATE TABLE function_versions (
            namespace TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
            config TEXT NOT NULL, code_hash TEXT NOT NULL, layer_hash TEXT,
            app TEXT, created_at REAL NOT NULL,
            PRIMARY KEY (namespace, name, version));
        CREATE TABLE invocations (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, function TEXT NOT NULL,
            version INTEGER NOT NULL, status TEXT NOT NULL, mode TEXT NOT NULL,
            created_at REAL NOT NULL, finished_at REAL, cold INTEGER NOT NULL DEFAULT 0,
            init_ms REAL NOT NULL DEFAULT 0, duration_ms REAL NOT NULL DEFAULT 0,
            max_memory_mb REAL NOT NULL DEFAULT 0, error TEXT, result TEXT, logs TEXT,
            trigger TEXT, payload BLOB);
        CREATE INDEX invocations_by_function ON invocations (namespace, function, created_at);
        CREATE INDEX invocations_pending ON invocations (status)
            WHERE status IN ('queued', 'running')
        """,
    ),
    (
        # `logs_after` (ondo logs --follow) walks finished invocations in finishing order;
        # without this it sorts every invocation of the function on each poll.
        "functions-0002",
        "CREATE INDEX invocations_by_finish ON invocations (namespace, function, finished_at)",
    ),
    (
        # How many platform starts have resumed an async invocation: one found `running` again
        # after being resumed was running at two crashes in a row (see FunctionService).
        "functions-0003",
        "ALTER TABLE invocations ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Async invocations are retried under the same id; the attempt tells them apart.
        "functions-0004",
        "ALTER TABLE invocations ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
    ),
    (
        # Retention deletes the oldest finished records first, a few hundred at a time.
        "functions-0005",
        "CREATE INDEX invocations_by_created ON invocations (created_at)",
    ),
    # --- action jobs ------------------------------------------------------------------
    (
        "actions-0001",
        """
        CREATE TABLE action_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            namespace TEXT NOT NULL, rule TEXT NOT NULL, action_index INTEGER NOT NULL,
            kind TEXT NOT NULL, enforcement_id TEXT NOT NULL,
            event_source TEXT NOT NULL, event_id TEXT NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            attempt_seq INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL, next_attempt_at REAL NOT NULL,
            last_error TEXT, invocation_ids TEXT NOT NULL DEFAULT '[]', result TEXT,
            request TEXT NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL);
        CREATE INDEX action_jobs_due ON action_jobs (next_attempt_at, id)
            WHERE status = 'pending';
        CREATE INDEX action_jobs_running ON action_jobs (status) WHERE status = 'running';
        CREATE INDEX action_jobs_dead ON action_jobs (namespace, id) WHERE status = 'dead';
        CREATE INDEX action_jobs_enforcement ON action_jobs (enforcement_id);
        CREATE INDEX action_jobs_event ON action_jobs (event_source, event_id)
        """,
    ),
    (
        # The lane groups jobs that share a limit (invoke: the function and its concurrency).
        "actions-0002",
        "ALTER TABLE action_jobs ADD COLUMN lane TEXT NOT NULL DEFAULT ''",
    ),
    (
        # Due jobs with their lane, read from the index alone when claiming.
        "actions-0003",
        "CREATE INDEX action_jobs_due_lane ON action_jobs (next_attempt_at, id, lane)"
        " WHERE status = 'pending'",
    ),
    (
        # Starts that found the job running since it last finished an attempt (crash loops).
        "actions-0004",
        "ALTER TABLE action_jobs ADD COLUMN recovered INTEGER NOT NULL DEFAULT 0",
    ),
    (
        # Finished jobs by when they were last touched: retention deletes the oldest first.
        "actions-0005",
        "CREATE INDEX action_jobs_finished ON action_jobs (updated_at)"
        " WHERE status IN ('succeeded', 'discarded')",
    ),
    # --- rule windows, throttles and timers -------------------------------------------
    (
        "rules_windows_001",
        """
        CREATE TABLE IF NOT EXISTS rule_counts (
            rule_id TEXT NOT NULL,
            key TEXT NOT NULL,
            event_uid TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (rule_id, event_uid)
        );
        CREATE INDEX IF NOT EXISTS rule_counts_by_key ON rule_counts (rule_id, key, at);
        CREATE TABLE IF NOT EXISTS rule_throttles (
            rule_id TEXT NOT NULL,
            key TEXT NOT NULL,
            last_fired_at REAL NOT NULL,
            PRIMARY KEY (rule_id, key)
        );
        CREATE TABLE IF NOT EXISTS rule_timers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            rule_id TEXT NOT NULL,
            key TEXT NOT NULL,
            started_at REAL NOT NULL,
            due_at REAL NOT NULL,
            event TEXT NOT NULL,
            status TEXT NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS rule_timers_one_pending
            ON rule_timers (rule_id, key) WHERE status = 'pending';
        CREATE INDEX IF NOT EXISTS rule_timers_due ON rule_timers (status, due_at)
        """,
    ),
    (
        # Retention finds each rule's rows that can no longer matter without a scan.
        "rules_windows_002",
        """
        CREATE INDEX IF NOT EXISTS rule_counts_by_age ON rule_counts (rule_id, at);
        CREATE INDEX IF NOT EXISTS rule_throttles_by_age ON rule_throttles (rule_id, last_fired_at)
        """,
    ),
    # --- rule enforcement records -----------------------------------------------------
    (
        "rules_enforcements_001",
        """
        CREATE TABLE IF NOT EXISTS rule_enforcements (
            id TEXT PRIMARY KEY,
            namespace TEXT NOT NULL,
            rule TEXT NOT NULL,
            stage TEXT NOT NULL,
            event_source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            at REAL NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL,
            actions TEXT NOT NULL,
            enqueued INTEGER NOT NULL,
            event TEXT,
            UNIQUE (namespace, rule, stage, event_source, event_id)
        );
        CREATE INDEX IF NOT EXISTS rule_enforcements_by_event ON rule_enforcements (event_id);
        CREATE INDEX IF NOT EXISTS rule_enforcements_by_rule
            ON rule_enforcements (namespace, rule, at);
        CREATE INDEX IF NOT EXISTS rule_enforcements_outbox ON rule_enforcements (enqueued)
            WHERE enqueued = 0
        """,
    ),
    (
        "rules_enforcements_002",
        """
        CREATE TABLE IF NOT EXISTS rule_skipped_events (
            namespace TEXT NOT NULL,
            event_source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (namespace, event_source, event_id)
        );
        CREATE INDEX IF NOT EXISTS rule_skipped_events_by_event ON rule_skipped_events (event_id)
        """,
    ),
    (
        # Retention deletes the oldest decisions first, a few hundred at a time.
        "rules_enforcements_003",
        """
        CREATE INDEX IF NOT EXISTS rule_enforcements_by_at ON rule_enforcements (at);
        CREATE INDEX IF NOT EXISTS rule_skipped_events_by_at ON rule_skipped_events (at)
        """,
    ),
    # --- rule registry ----------------------------------------------------------------
    (
        "rules_registry_001",
        """
        CREATE TABLE IF NOT EXISTS rules (
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            text TEXT,
            spec TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            app TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (namespace, name)
        );
        CREATE INDEX IF NOT EXISTS rules_by_app ON rules (namespace, app)
        """,
    ),
    (
        "rules_registry_002",
        "ALTER TABLE rules ADD COLUMN disabled_reason TEXT",
    ),
    # --- retention (retention.py): what each kind has had deleted up to ----------------
    (
        "retention-0001",
        """
        CREATE TABLE retention_watermarks (
            kind TEXT PRIMARY KEY, pruned_before REAL NOT NULL, updated_at REAL NOT NULL)
        """,
    ),
    # --- action jobs: who claimed a running job --------------------------------------
    (
        # The queue that claimed a running job (host and data dir): at start a queue takes
        # back only its own (and those of versions that kept no owner).
        "actions-0006",
        "ALTER TABLE action_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
    ),
    # --- the event index (repositories/events.py): lookups the bus's log does not index -
    (
        "events-0001",
        """
        CREATE TABLE event_index (
            seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL, source TEXT NOT NULL,
            id TEXT NOT NULL, type TEXT NOT NULL, received_at REAL NOT NULL);
        CREATE INDEX event_index_by_id ON event_index (id, namespace);
        CREATE INDEX event_index_by_age ON event_index (received_at)
        """,
    ),
    (
        # Pruned through the primary key (the oldest seqs are the oldest events): one index
        # less per row (~35 B of the ~170-250 B a row takes).
        "events-0002",
        "DROP INDEX event_index_by_age",
    ),
    # --- blobs (repositories/blobs.py): code and layers, on a shared store only ---------
    (
        "blobs-0001",
        """
        CREATE TABLE blob_parts (
            kind TEXT NOT NULL, hash TEXT NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (kind, hash, part))
        """,
    ),
    # --- sources, their state, contacts and groups (repositories/sources.py) -------------
    (
        "sources-0001",
        """
        CREATE TABLE sources (
            namespace TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL,
            app TEXT, updated_at REAL NOT NULL, PRIMARY KEY (namespace, name));
        CREATE TABLE source_state (
            namespace TEXT NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            updated_at REAL NOT NULL, PRIMARY KEY (namespace, name, key));
        CREATE TABLE contacts (
            namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, app TEXT,
            PRIMARY KEY (namespace, name));
        CREATE TABLE contact_groups (
            namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, app TEXT,
            PRIMARY KEY (namespace, name))
        """,
    ),
    # --- action jobs: an attempt that may have run before ----------------------------
    (
        # Set when a running job goes back to pending for the same attempt (a stop cut it
        # off, or a crash): only such an attempt is looked up before it runs (`perform_first`).
        "actions-0007",
        "ALTER TABLE action_jobs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0",
    ),
    # --- identity: users, token lifetimes, policies, consent grants, secrets, audit --------
    (
        "identity-0001",
        """
        ALTER TABLE tokens ADD COLUMN id TEXT;
        ALTER TABLE tokens ADD COLUMN label TEXT NOT NULL DEFAULT '';
        ALTER TABLE tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE tokens ADD COLUMN expires_at REAL;
        ALTER TABLE tokens ADD COLUMN revoked_at REAL;
        ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE tokens ADD COLUMN role TEXT;
        ALTER TABLE tokens ADD COLUMN kind TEXT;
        UPDATE tokens SET id = 'tok_' || substr(hash, 1, 16) WHERE id IS NULL;
        CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
        CREATE INDEX tokens_by_principal ON tokens (namespace, principal);
        CREATE TABLE users (
            namespace TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, kind TEXT NOT NULL,
            created_at REAL NOT NULL, created_by TEXT NOT NULL,
            PRIMARY KEY (namespace, name));
        CREATE TABLE policies (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, principal TEXT NOT NULL,
            permission TEXT NOT NULL, resource TEXT NOT NULL, created_at REAL NOT NULL,
            created_by TEXT NOT NULL);
        CREATE INDEX policies_by_principal ON policies (namespace, principal);
        CREATE TABLE grants (
            id TEXT PRIMARY KEY, namespace TEXT NOT NULL, subject TEXT NOT NULL,
            grantee TEXT NOT NULL, types TEXT NOT NULL, fields TEXT, purpose TEXT NOT NULL,
            created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);
        CREATE INDEX grants_by_subject ON grants (namespace, subject);
        CREATE INDEX grants_by_grantee ON grants (namespace, grantee);
        CREATE TABLE secrets (
            namespace TEXT NOT NULL, name TEXT NOT NULL, ciphertext BLOB NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, created_by TEXT NOT NULL,
            PRIMARY KEY (namespace, name));
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, namespace TEXT NOT NULL,
            principal TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL,
            outcome TEXT NOT NULL, about TEXT NOT NULL, detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX audit_log_by_about ON audit_log (namespace, about, seq);
        CREATE INDEX audit_log_by_at ON audit_log (at);
        ALTER TABLE rule_enforcements ADD COLUMN subject TEXT NOT NULL DEFAULT '';
        ALTER TABLE rule_enforcements ADD COLUMN grant_id TEXT NOT NULL DEFAULT '';
        CREATE INDEX rule_enforcements_by_subject ON rule_enforcements (namespace, subject, at)
            WHERE subject <> ''
        """,
    ),
    # --- audit: a caller's own trail (`ondo audit list` of a principal) ------------------
    (
        "audit-0001",
        "CREATE INDEX audit_log_by_principal ON audit_log (namespace, principal, seq)",
    ),
    # --- function identities: the key that signs each invocation's short-lived token --------
    (
        "fnid-0001",
        """
        CREATE TABLE platform_keys (
            name TEXT PRIMARY KEY, secret TEXT NOT NULL, created_at REAL NOT NULL)
        """,
    ),
]
