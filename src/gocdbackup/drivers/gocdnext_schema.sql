-- A gocdnext-shaped schema for demos and tests: the tables a backup tool must understand,
-- with gocdnext's table and column names, types, nullability and constraints (goose 86).

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    log_archive_enabled boolean
);

CREATE TABLE pipelines (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name text NOT NULL,
    definition jsonb NOT NULL,
    definition_raw jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    pipeline_id uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    counter bigint NOT NULL,
    cause text NOT NULL,
    revisions jsonb NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    definition jsonb NOT NULL DEFAULT '{}',
    UNIQUE (pipeline_id, counter)
);

CREATE TABLE stage_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name text NOT NULL,
    ordinal int NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    started_at timestamptz,
    finished_at timestamptz,
    UNIQUE (run_id, name)
);

CREATE TABLE job_runs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage_run_id uuid NOT NULL REFERENCES stage_runs(id) ON DELETE CASCADE,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    started_at timestamptz,
    finished_at timestamptz,
    attempt int NOT NULL DEFAULT 0,
    logs_archive_uri text,
    logs_archived_at timestamptz
);

CREATE TABLE artifacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job_run_id uuid NOT NULL REFERENCES job_runs(id) ON DELETE CASCADE,
    pipeline_id uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path text NOT NULL,
    storage_key text NOT NULL,
    size_bytes bigint NOT NULL DEFAULT 0,
    content_sha256 text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'pending',
    pinned_at timestamptz,
    deleted_at timestamptz,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT artifacts_storage_key_key UNIQUE (storage_key),
    CONSTRAINT artifacts_status_check CHECK (status IN ('pending', 'ready', 'deleting'))
);
CREATE INDEX idx_artifacts_run ON artifacts (run_id);
CREATE INDEX idx_artifacts_job_run ON artifacts (job_run_id);
CREATE INDEX idx_artifacts_ttl ON artifacts (expires_at)
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND pinned_at IS NULL;
CREATE UNIQUE INDEX idx_artifacts_jobrun_path_active ON artifacts (job_run_id, path)
    WHERE deleted_at IS NULL;

CREATE TABLE caches (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key text NOT NULL,
    storage_key text NOT NULL,
    size_bytes bigint NOT NULL DEFAULT 0,
    content_sha256 text,
    status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_accessed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT caches_project_id_key_key UNIQUE (project_id, key)
);
CREATE INDEX caches_ready_lru_idx ON caches (last_accessed_at) WHERE status = 'ready';

CREATE TABLE log_lines (
    job_run_id uuid NOT NULL,
    seq bigint NOT NULL,
    stream text NOT NULL,
    at timestamptz NOT NULL,
    text text NOT NULL,
    CONSTRAINT log_lines_new_pkey PRIMARY KEY (job_run_id, seq, at),
    CONSTRAINT log_lines_new_job_run_id_fkey FOREIGN KEY (job_run_id)
        REFERENCES job_runs(id) ON DELETE CASCADE
) PARTITION BY RANGE (at);
CREATE INDEX log_lines_job_seq ON log_lines (job_run_id, seq);

CREATE TABLE secrets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid REFERENCES projects(id) ON DELETE CASCADE,
    name text NOT NULL,
    value_enc bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL DEFAULT 'db',
    ref_path text,
    ref_key text,
    CONSTRAINT secrets_source_shape CHECK (
        (source = 'db' AND value_enc IS NOT NULL AND ref_path IS NULL AND ref_key IS NULL)
        OR (source <> 'db' AND value_enc IS NULL AND ref_path IS NOT NULL))
);
CREATE UNIQUE INDEX secrets_project_name_idx ON secrets (project_id, name)
    WHERE project_id IS NOT NULL;
CREATE UNIQUE INDEX secrets_global_name_idx ON secrets (name) WHERE project_id IS NULL;

CREATE TABLE platform_settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    credentials_enc bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid
);

-- the other columns sealed with GOCDNEXT_SECRET_KEY (migrations 00002, 00008, 00010, 00011,
-- 00025, 00026, 00030, 00044, 00048): ids, names, the sealed column with its real type and
-- nullability, and the constraints that shape the rows

CREATE TABLE auth_providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    kind text NOT NULL,
    client_id text NOT NULL,
    client_secret bytea NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT auth_providers_kind_check CHECK (kind IN ('github', 'oidc'))
);

CREATE TABLE vcs_integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind text NOT NULL,
    name text NOT NULL UNIQUE,
    app_id bigint,
    private_key bytea,
    webhook_secret bytea,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vcs_integrations_kind_check CHECK (kind IN ('github_app'))
);

CREATE TABLE scm_sources (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    provider text NOT NULL CHECK (provider IN ('github', 'gitlab', 'bitbucket', 'manual')),
    url text NOT NULL,
    default_branch text NOT NULL DEFAULT 'main',
    auth_ref text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    webhook_secret bytea
);

CREATE TABLE scm_credentials (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider text NOT NULL CHECK (provider IN ('gitlab', 'bitbucket')),
    host text NOT NULL,
    auth_ref_encrypted bytea NOT NULL,
    created_by uuid,  -- references users(id) in gocdnext; this schema has no users table
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, host)
);

CREATE TABLE runner_profiles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    engine text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    env jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {NAME: lowercase hex of a sealed blob}
    CONSTRAINT runner_profiles_engine_check CHECK (engine IN ('kubernetes'))
);

CREATE TABLE oidc_signing_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kid text NOT NULL UNIQUE,
    alg text NOT NULL DEFAULT 'RS256',
    private_key_enc bytea NOT NULL,
    public_key_der bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    revoked_at timestamptz
);
CREATE UNIQUE INDEX oidc_signing_keys_one_active ON oidc_signing_keys ((true))
    WHERE retired_at IS NULL AND revoked_at IS NULL;

CREATE TABLE clusters (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    auth_type text NOT NULL,
    api_server text NOT NULL DEFAULT '',
    ca_cert bytea,
    credential_enc bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clusters_auth_type_check CHECK (auth_type IN ('kubeconfig', 'token', 'in_cluster'))
);

CREATE TABLE goose_db_version (
    id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
    version_id bigint NOT NULL,
    is_applied boolean NOT NULL,
    tstamp timestamp NOT NULL DEFAULT now()
);
