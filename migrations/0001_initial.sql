-- 0001: the whole schema of spec/DATA.md, with the fixes SEED-GAPS asks for: INTEGER snowflake
-- ids (D3) so paging compares numerically, cascades that let a channel with messages be deleted
-- (G-14), the @everyone role identified by id = space id (G-03), composite indexes for every
-- lookup the API does (G-38), plus the tables of features the original lacked (attachments that
-- are really written, audit log, soundboard, two-factor auth, commands and interactions).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    avatar          TEXT,
    banner          TEXT,
    accent_color    INTEGER,
    bio             TEXT,
    bot             INTEGER NOT NULL DEFAULT 0,
    system          INTEGER NOT NULL DEFAULT 0,
    flags           INTEGER NOT NULL DEFAULT 0,
    public_flags    INTEGER NOT NULL DEFAULT 0,
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    mfa_enabled     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE user_tokens (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX idx_user_tokens_user_id ON user_tokens(user_id);
CREATE INDEX idx_user_tokens_expires_at ON user_tokens(expires_at);

CREATE TABLE user_mfa (
    user_id         INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret          TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 0,
    last_used_step  INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL
);

CREATE TABLE mfa_backup_codes (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT    NOT NULL,
    used_at     TEXT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE spaces (
    id                          INTEGER PRIMARY KEY,
    name                        TEXT    NOT NULL,
    slug                        TEXT    NOT NULL UNIQUE,
    description                 TEXT,
    icon                        TEXT,
    banner                      TEXT,
    splash                      TEXT,
    owner_id                    INTEGER NOT NULL REFERENCES users(id),
    verification_level          TEXT    NOT NULL DEFAULT 'none',
    default_notifications       TEXT    NOT NULL DEFAULT 'all',
    explicit_content_filter     TEXT    NOT NULL DEFAULT 'disabled',
    vanity_url_code             TEXT UNIQUE,
    preferred_locale            TEXT    NOT NULL DEFAULT 'en-US',
    afk_channel_id              INTEGER,
    afk_timeout                 INTEGER NOT NULL DEFAULT 300,
    system_channel_id           INTEGER,
    rules_channel_id            INTEGER,
    nsfw_level                  TEXT    NOT NULL DEFAULT 'default',
    premium_tier                TEXT    NOT NULL DEFAULT 'none',
    premium_subscription_count  INTEGER NOT NULL DEFAULT 0,
    max_members                 INTEGER NOT NULL DEFAULT 500000,
    public                      INTEGER NOT NULL DEFAULT 0,
    created_at                  TEXT    NOT NULL,
    updated_at                  TEXT    NOT NULL
);
CREATE INDEX idx_spaces_owner_id ON spaces(owner_id);
CREATE INDEX idx_spaces_public ON spaces(public) WHERE public = 1;

CREATE TABLE channels (
    id                  INTEGER PRIMARY KEY,
    space_id            INTEGER REFERENCES spaces(id) ON DELETE CASCADE,
    name                TEXT,
    type                TEXT    NOT NULL DEFAULT 'text',
    topic               TEXT,
    position            INTEGER NOT NULL DEFAULT 0,
    parent_id           INTEGER REFERENCES channels(id) ON DELETE SET NULL,
    nsfw                INTEGER NOT NULL DEFAULT 0,
    rate_limit          INTEGER NOT NULL DEFAULT 0,
    bitrate             INTEGER,
    user_limit          INTEGER,
    owner_id            INTEGER REFERENCES users(id) ON DELETE SET NULL,
    last_message_id     INTEGER,
    archived            INTEGER NOT NULL DEFAULT 0,
    auto_archive_after  INTEGER,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);
CREATE INDEX idx_channels_space_id ON channels(space_id, position);
CREATE INDEX idx_channels_parent_id ON channels(parent_id);

CREATE TABLE dm_participants (
    channel_id  INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX idx_dm_participants_user_id ON dm_participants(user_id);

-- @everyone is the role whose id equals its space's id (G-03).
CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    color       INTEGER NOT NULL DEFAULT 0,
    hoist       INTEGER NOT NULL DEFAULT 0,
    icon        TEXT,
    position    INTEGER NOT NULL DEFAULT 0,
    permissions TEXT    NOT NULL DEFAULT '[]',
    managed     INTEGER NOT NULL DEFAULT 0,
    mentionable INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX idx_roles_space_id ON roles(space_id, position);

CREATE TABLE members (
    space_id        INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    nickname        TEXT,
    avatar          TEXT,
    joined_at       TEXT    NOT NULL,
    premium_since   TEXT,
    deaf            INTEGER NOT NULL DEFAULT 0,
    mute            INTEGER NOT NULL DEFAULT 0,
    pending         INTEGER NOT NULL DEFAULT 0,
    timed_out_until TEXT,
    PRIMARY KEY (space_id, user_id)
);
CREATE INDEX idx_members_user_id ON members(user_id);

CREATE TABLE member_roles (
    space_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    role_id     INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (space_id, user_id, role_id),
    FOREIGN KEY (space_id, user_id) REFERENCES members(space_id, user_id) ON DELETE CASCADE
);
CREATE INDEX idx_member_roles_role_id ON member_roles(role_id);

CREATE TABLE permission_overwrites (
    channel_id  INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    target_id   INTEGER NOT NULL,
    type        TEXT    NOT NULL CHECK (type IN ('role', 'member')),
    allow       TEXT    NOT NULL DEFAULT '[]',
    deny        TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (channel_id, target_id)
);

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,
    channel_id          INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    space_id            INTEGER REFERENCES spaces(id) ON DELETE CASCADE,
    author_id           INTEGER NOT NULL REFERENCES users(id),
    content             TEXT    NOT NULL,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    edited_at           TEXT,
    type                TEXT    NOT NULL DEFAULT 'default',
    tts                 INTEGER NOT NULL DEFAULT 0,
    pinned              INTEGER NOT NULL DEFAULT 0,
    mention_everyone    INTEGER NOT NULL DEFAULT 0,
    mentions            TEXT    NOT NULL DEFAULT '[]',
    mention_roles       TEXT    NOT NULL DEFAULT '[]',
    embeds              TEXT    NOT NULL DEFAULT '[]',
    reply_to            INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    thread_id           INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    flags               INTEGER NOT NULL DEFAULT 0,
    webhook_id          INTEGER,
    nonce               TEXT
);
CREATE INDEX idx_messages_channel_id ON messages(channel_id, id);
CREATE INDEX idx_messages_thread_id ON messages(thread_id, id) WHERE thread_id IS NOT NULL;
CREATE INDEX idx_messages_author_id ON messages(author_id);
CREATE INDEX idx_messages_space_id ON messages(space_id, id);
CREATE INDEX idx_messages_reply_to ON messages(reply_to) WHERE reply_to IS NOT NULL;

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel_id      INTEGER NOT NULL,
    filename        TEXT    NOT NULL,
    description     TEXT,
    content_type    TEXT,
    size            INTEGER NOT NULL DEFAULT 0,
    storage_key     TEXT    NOT NULL,
    width           INTEGER,
    height          INTEGER
);
CREATE INDEX idx_attachments_message_id ON attachments(message_id);

CREATE TABLE reactions (
    message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    emoji_key   TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji_id    INTEGER,
    emoji_name  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (message_id, emoji_key, user_id)
);

CREATE TABLE pinned_messages (
    channel_id  INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    pinned_at   TEXT    NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX idx_pinned_messages_message_id ON pinned_messages(message_id);

CREATE TABLE bans (
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason      TEXT,
    banned_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (space_id, user_id)
);

CREATE TABLE invites (
    code        TEXT    PRIMARY KEY,
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    channel_id  INTEGER REFERENCES channels(id) ON DELETE CASCADE,
    inviter_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    max_age     INTEGER,
    temporary   INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT
);
CREATE INDEX idx_invites_space_id ON invites(space_id);
CREATE INDEX idx_invites_channel_id ON invites(channel_id);

CREATE TABLE emojis (
    id              INTEGER PRIMARY KEY,
    space_id        INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    animated        INTEGER NOT NULL DEFAULT 0,
    managed         INTEGER NOT NULL DEFAULT 0,
    available       INTEGER NOT NULL DEFAULT 1,
    require_colons  INTEGER NOT NULL DEFAULT 1,
    creator_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    image_key       TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (space_id, name)
);

CREATE TABLE emoji_roles (
    emoji_id    INTEGER NOT NULL REFERENCES emojis(id) ON DELETE CASCADE,
    role_id     INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (emoji_id, role_id)
);

CREATE TABLE applications (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    icon        TEXT,
    description TEXT    NOT NULL DEFAULT '',
    bot_public  INTEGER NOT NULL DEFAULT 1,
    owner_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    flags       INTEGER NOT NULL DEFAULT 0,
    bot_user_id INTEGER REFERENCES users(id),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX idx_applications_owner_id ON applications(owner_id);

CREATE TABLE bot_tokens (
    token_hash      TEXT    PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      TEXT    NOT NULL
);
CREATE INDEX idx_bot_tokens_application_id ON bot_tokens(application_id);

CREATE TABLE application_commands (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    space_id        INTEGER REFERENCES spaces(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    options         TEXT    NOT NULL DEFAULT '[]',
    type            TEXT    NOT NULL DEFAULT 'chat_input',
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX idx_application_commands_name
    ON application_commands(application_id, IFNULL(space_id, 0), name);

CREATE TABLE interactions (
    id              INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    token_hash      TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    data            TEXT    NOT NULL DEFAULT 'null',
    space_id        INTEGER,
    channel_id      INTEGER,
    user_id         INTEGER NOT NULL,
    responded       INTEGER NOT NULL DEFAULT 0,
    response        TEXT,
    response_message_id INTEGER,
    created_at      TEXT    NOT NULL
);
CREATE INDEX idx_interactions_application_id ON interactions(application_id);

CREATE TABLE soundboard_sounds (
    id              INTEGER PRIMARY KEY,
    space_id        INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    volume          REAL    NOT NULL DEFAULT 1.0,
    creator_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    audio_key       TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX idx_soundboard_sounds_space_id ON soundboard_sounds(space_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    user_id     INTEGER,
    action_type TEXT    NOT NULL,
    target_id   TEXT,
    target_type TEXT,
    reason      TEXT,
    changes     TEXT    NOT NULL DEFAULT '[]',
    created_at  TEXT    NOT NULL
);
CREATE INDEX idx_audit_log_space_id ON audit_log(space_id, id);

CREATE TABLE sfu_nodes (
    id              TEXT    PRIMARY KEY,
    endpoint        TEXT    NOT NULL,
    control_url     TEXT,
    region          TEXT    NOT NULL,
    capacity        INTEGER NOT NULL DEFAULT 0,
    current_load    INTEGER NOT NULL DEFAULT 0,
    status          TEXT    NOT NULL DEFAULT 'offline',
    last_heartbeat  TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX idx_sfu_nodes_status ON sfu_nodes(status, region);
