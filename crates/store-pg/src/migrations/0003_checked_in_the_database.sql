-- pam_totp schema, version 3 (issue #16): the database checks the codes.
--
-- A host sends a user name and what the user typed; the two SECURITY DEFINER functions
-- below (host_lookup, host_verify) decide with the database's clock, the database's
-- policy and the realms granted to the host's login role (session_user). No function a
-- host may call returns a secret, a recovery-code hash or anything a code can be
-- computed from, and none takes a host's word that a code was right.
--
-- Enrollments are columns, not record text. Records of version 1/2 (TOML in
-- pam_totp.records, sealed or not) are moved into them by pam_totp::db::migrate in the
-- same transaction as this file (Rust: a sealed record needs the host key), which then
-- drops pam_totp.records and ties login_state to enrollments (see migrate.rs).
--
-- Secrets at rest: the secret column holds pgp_sym_encrypt_bytea() ciphertext under a
-- key read from the file `pam_totp_secret.key` in the server's data directory
-- (at_rest_key below): not in a pg_dump, and only readable by roles the superuser let
-- execute pg_read_file (the admin role), never by a host. See SECURITY.md.

-- pgcrypto in a schema of its own that no host may use (its functions are executable by
-- PUBLIC, and a host has USAGE on pam_totp); the functions below call it by name.
CREATE SCHEMA IF NOT EXISTS pam_totp_crypto;
REVOKE ALL ON SCHEMA pam_totp_crypto FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA pam_totp_crypto;

-- pgcrypto elsewhere (say, public) would be called through a schema others may write to.
DO $$
BEGIN
    IF (SELECT n.nspname FROM pg_catalog.pg_extension e
        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pgcrypto') <> 'pam_totp_crypto' THEN
        RAISE EXCEPTION 'pam_totp needs the pgcrypto extension in schema pam_totp_crypto; it is in another schema'
            USING HINT = 'give pam_totp a database of its own, or ALTER EXTENSION pgcrypto SET SCHEMA pam_totp_crypto';
    END IF;
END
$$;

-- The lock-out policy and the window: the database's, set by the admin
-- (totp-enroll db policy). One row. Defaults: the config file's defaults.
CREATE TABLE pam_totp.policy (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    max_failures integer NOT NULL DEFAULT 5 CHECK (max_failures >= 1),
    lockout_seconds bigint NOT NULL DEFAULT 30 CHECK (lockout_seconds > 0),
    lockout_max_seconds bigint NOT NULL DEFAULT 900,
    window_steps integer NOT NULL DEFAULT 1 CHECK (window_steps BETWEEN 0 AND 10),
    -- Accounts whose attempts at a host's local console are counted apart (Channel::Console).
    lockout_exempt text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(lockout_exempt) <= 1000 AND array_position(lockout_exempt, NULL) IS NULL),
    CHECK (lockout_max_seconds >= lockout_seconds)
);
INSERT INTO pam_totp.policy DEFAULT VALUES;

CREATE TABLE pam_totp.realms (
    realm text PRIMARY KEY CHECK (realm ~ '^[a-z0-9][a-z0-9_.-]{0,62}$')
);
INSERT INTO pam_totp.realms VALUES ('default');

-- One user's enrollment. Kept apart from the realms: a removed enrollment leaves the user
-- in its realms, so that a user of p2 stays "not allowed" on p1 (never "not enrolled").
CREATE TABLE pam_totp.enrollments (
    user_name text PRIMARY KEY CHECK (length(user_name) BETWEEN 1 AND 256),
    -- pgp_sym_encrypt_bytea(raw secret, at_rest_key()).
    secret bytea NOT NULL CHECK (length(secret) <= 1024),
    algorithm text NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits integer NOT NULL CHECK (digits BETWEEN 6 AND 8),
    period integer NOT NULL CHECK (period BETWEEN 1 AND 300),
    created text NOT NULL DEFAULT '' CHECK (length(created) <= 64),
    -- Unix time at which the step of the code that confirmed the enrollment ends; codes
    -- of earlier steps are refused like used ones.
    confirmed_until bigint NOT NULL DEFAULT 0 CHECK (confirmed_until >= 0),
    -- The set of recovery (or scratch) codes: crypt() strings (bcrypt) made by the
    -- database, in index order, and the epoch naming the set (0: none).
    recovery_epoch bigint NOT NULL DEFAULT 0,
    recovery_hashes text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(recovery_hashes) <= 32
               AND array_to_string(recovery_hashes, ' ', '-')
                   ~ '^(\$2a\$[0-9]{2}\$[./A-Za-z0-9]{53}( |$))*$'),
    scratch_codes boolean NOT NULL DEFAULT false,
    recovery_set_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which realms a user belongs to; a user with no row is in `default`.
CREATE TABLE pam_totp.user_realms (
    user_name text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    realm text NOT NULL REFERENCES pam_totp.realms ON DELETE CASCADE,
    PRIMARY KEY (user_name, realm)
);

-- Which realms a host's login role may check codes for.
CREATE TABLE pam_totp.host_realms (
    host_role text NOT NULL CHECK (length(host_role) BETWEEN 1 AND 63),
    realm text NOT NULL REFERENCES pam_totp.realms ON DELETE CASCADE,
    PRIMARY KEY (host_role, realm)
);

-- Every existing member of pam_totp_host keeps checking codes for everyone (`default`).
INSERT INTO pam_totp.host_realms (host_role, realm)
SELECT r.rolname, 'default'
FROM pg_catalog.pg_auth_members m
JOIN pg_catalog.pg_roles r ON r.oid = m.member
WHERE m.roleid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'pam_totp_host');

-- What the failed-attempts report needs: failures since the last success (on any
-- channel, not cleared by an unlock), and the last failure's time and client.
ALTER TABLE pam_totp.login_state
    ADD COLUMN failures_since_success integer NOT NULL DEFAULT 0,
    ADD COLUMN last_failure bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_failure_source text NOT NULL DEFAULT '' CHECK (length(last_failure_source) <= 64);
-- Tied to enrollments instead (migrate.rs, once the records are moved).
ALTER TABLE pam_totp.login_state DROP CONSTRAINT login_state_user_name_fkey;

-- The old host functions took the host's word (a step, a verdict, a clock, a policy):
-- no host may call them any more.
REVOKE ALL ON FUNCTION pam_totp.login_read(text) FROM pam_totp_host;
REVOKE ALL ON FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean) FROM pam_totp_host;
REVOKE ALL ON FUNCTION pam_totp.login_accept_step(text, bigint, bigint, bigint, boolean) FROM pam_totp_host;
REVOKE ALL ON FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint, boolean) FROM pam_totp_host;
DROP FUNCTION pam_totp.login_read(text);
DROP FUNCTION pam_totp.login_charge(text, bigint, integer, bigint, bigint, boolean);
DROP FUNCTION pam_totp.login_accept_step(text, bigint, bigint, bigint, boolean);
DROP FUNCTION pam_totp.login_burn_recovery(text, bigint, bigint, bigint, bigint, boolean);

REVOKE ALL ON ALL TABLES IN SCHEMA pam_totp FROM PUBLIC;

-- The key the secrets are encrypted under, from the data directory (pg_read_file with a
-- relative path: needs EXECUTE on it, which only the superuser can grant). Runs as the
-- caller: the admin role, or a host function's owner (the admin role).
CREATE FUNCTION pam_totp.at_rest_key()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text;
BEGIN
    BEGIN
        key := pg_catalog.btrim(pg_catalog.pg_read_file('pam_totp_secret.key'), E' \t\r\n');
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'pam_totp: cannot read the at-rest key pam_totp_secret.key in the data directory'
            USING HINT = 'see "Secrets at rest" in docs/guide.md';
    END;
    IF key IS NULL OR length(key) < 32 THEN
        RAISE EXCEPTION 'pam_totp: the at-rest key pam_totp_secret.key is shorter than 32 characters';
    END IF;
    RETURN key;
END
$$;

CREATE FUNCTION pam_totp.seal_secret(p_secret bytea)
RETURNS bytea
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT pam_totp_crypto.pgp_sym_encrypt_bytea(p_secret, pam_totp.at_rest_key(),
                                          'cipher-algo=aes256, s2k-mode=1, s2k-digest-algo=sha256')
$$;

CREATE FUNCTION pam_totp.open_secret(p_sealed bytea)
RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT pam_totp_crypto.pgp_sym_decrypt_bytea(p_sealed, pam_totp.at_rest_key())
$$;

-- RFC 4226 HOTP of counter p_counter: HMAC (p_algorithm: SHA1, SHA256, SHA512) of the
-- counter as 8 big-endian bytes, dynamic truncation, p_digits decimal digits.
CREATE FUNCTION pam_totp.hotp(p_secret bytea, p_counter bigint, p_algorithm text, p_digits integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    -- (Parenthesised: PostgreSQL gives <<, | and & the same precedence.)
    SELECT lpad(((((get_byte(mac, o) & 127)::bigint << 24)
                  | (get_byte(mac, o + 1)::bigint << 16)
                  | (get_byte(mac, o + 2)::bigint << 8)
                  | get_byte(mac, o + 3)::bigint)
                 % (10::bigint ^ p_digits)::bigint)::text,
                p_digits, '0')
    FROM (SELECT mac, get_byte(mac, length(mac) - 1) & 15 AS o
          FROM (SELECT pam_totp_crypto.hmac(int8send(p_counter), p_secret, lower(p_algorithm)) AS mac) h) t
$$;

-- Whether the calling host (session_user) may check codes for p_user: a realm of the
-- user's (`default` if it has none) is granted to the host's login role.
CREATE FUNCTION pam_totp.host_may_check(p_user text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pam_totp.host_realms h
        WHERE h.host_role = session_user::text
          AND h.realm IN (SELECT u.realm FROM pam_totp.user_realms u WHERE u.user_name = p_user
                          UNION ALL
                          SELECT 'default' WHERE NOT EXISTS (
                              SELECT 1 FROM pam_totp.user_realms u WHERE u.user_name = p_user)))
$$;

-- Whether p_user's attempts on this channel are counted apart (Channel::Console).
CREATE FUNCTION pam_totp.console_channel(p_user text, p_console boolean)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT coalesce(p_console, false) AND p_user = ANY (p.lockout_exempt) FROM pam_totp.policy p
$$;

-- The same work as checking a TOTP code of an enrolled user over the window, for users
-- the host gets no answer about: timing does not tell them apart.
CREATE FUNCTION pam_totp.decoy_work(p_window integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    junk text;
BEGIN
    junk := pam_totp.at_rest_key();
    junk := pam_totp_crypto.pgp_sym_decrypt_bytea(
        pam_totp_crypto.pgp_sym_encrypt_bytea('\x00'::bytea, 'decoy', 'cipher-algo=aes256, s2k-mode=1'), 'decoy');
    FOR step IN 0 .. 2 * p_window LOOP
        junk := pam_totp.hotp('\x0000000000000000000000000000000000000000'::bytea, step, 'SHA1', 6);
    END LOOP;
END
$$;

-- Before the prompt: only what the host needs to behave well.
CREATE FUNCTION pam_totp.host_lookup(p_user text, p_console boolean)
RETURNS TABLE (status text, locked_until bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_until bigint;
BEGIN
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN QUERY SELECT 'not_allowed'::text, 0::bigint;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pam_totp.enrollments e WHERE e.user_name = p_user) THEN
        RETURN QUERY SELECT 'not_enrolled'::text, 0::bigint;
        RETURN;
    END IF;
    SELECT CASE WHEN pam_totp.console_channel(p_user, p_console) THEN s.console_locked_until
                ELSE s.locked_until END
    INTO v_until
    FROM pam_totp.login_state s WHERE s.user_name = p_user;
    RETURN QUERY SELECT 'enrolled'::text,
                        CASE WHEN coalesce(v_until, 0) > v_now THEN v_until ELSE 0 END;
END
$$;

-- After the prompt: the whole verdict in one transaction, under the user's state row lock
-- (concurrent attempts on any hosts are taken one after the other).
CREATE FUNCTION pam_totp.host_verify(p_user text, p_answer text, p_console boolean, p_source text)
RETURNS TABLE (verdict text, failures integer, locked_until bigint,
               locked_until_before bigint, recovery_left integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    pol pam_totp.policy%ROWTYPE;
    e pam_totp.enrollments%ROWTYPE;
    st pam_totp.login_state%ROWTYPE;
    v_console boolean;
    v_failures integer;
    v_before bigint;
    v_code text;
    v_secret bytea;
    v_floor bigint;
    v_first_fresh bigint;
    v_current bigint;
    v_step bigint;
    v_fresh bigint;
    v_replayed boolean := false;
    v_index integer;
    v_hash text;
    v_used bigint;
    v_bit bigint;
    v_verdict text;
BEGIN
    SELECT * INTO pol FROM pam_totp.policy;
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        PERFORM pam_totp.decoy_work(pol.window_steps);
        RETURN QUERY SELECT 'not_allowed'::text, 0, 0::bigint, 0::bigint, NULL::integer;
        RETURN;
    END IF;
    SELECT * INTO e FROM pam_totp.enrollments en WHERE en.user_name = p_user;
    IF NOT FOUND THEN
        PERFORM pam_totp.decoy_work(pol.window_steps);
        RETURN QUERY SELECT 'not_enrolled'::text, 0, 0::bigint, 0::bigint, NULL::integer;
        RETURN;
    END IF;
    v_console := pam_totp.console_channel(p_user, p_console);

    INSERT INTO pam_totp.login_state AS s (user_name) VALUES (p_user) ON CONFLICT DO NOTHING;
    SELECT * INTO st FROM pam_totp.login_state s WHERE s.user_name = p_user FOR UPDATE;
    IF v_console THEN
        v_failures := st.console_failures;
        v_before := st.console_locked_until;
    ELSE
        v_failures := st.failures;
        v_before := st.locked_until;
    END IF;
    v_before := CASE WHEN v_before > v_now THEN v_before ELSE 0 END;
    IF v_before > 0 THEN
        -- Not charged, not checked.
        RETURN QUERY SELECT 'locked_out'::text, v_failures, v_before, v_before, NULL::integer;
        RETURN;
    END IF;

    -- What the answer is (answer.rs): a code of the enrollment's digits, else (only with
    -- a set of codes) a scratch code or a recovery code, else malformed.
    IF p_answer IS NULL OR length(p_answer) > 64 THEN
        v_verdict := 'malformed_code';
    ELSE
        v_code := translate(p_answer, E' \t\r\n', '');
        IF v_code ~ ('^[0-9]{' || e.digits || '}$') THEN
            v_verdict := 'code';
        ELSIF cardinality(e.recovery_hashes) = 0 THEN
            v_verdict := 'malformed_code';
        ELSIF e.scratch_codes AND v_code ~ '^[0-9]{8}$' THEN
            v_verdict := 'scratch';
        ELSE
            v_code := translate(lower(translate(p_answer, E' \t\r\n-', '')), 'oil', '011');
            v_verdict := CASE WHEN v_code ~ '^[0-9a-hjkmnp-tv-z]{12}$' THEN 'recovery'
                              ELSE 'malformed_code' END;
        END IF;
    END IF;

    IF v_verdict = 'code' THEN
        v_secret := pam_totp.open_secret(e.secret);
        v_floor := greatest(st.used_until, e.confirmed_until);
        v_first_fresh := ceil(v_floor::numeric / e.period)::bigint;
        v_current := v_now / e.period;
        v_step := greatest(v_current - pol.window_steps, 0);
        WHILE v_step <= v_current + pol.window_steps LOOP
            IF pam_totp.hotp(v_secret, v_step, e.algorithm, e.digits) = v_code THEN
                IF v_step >= v_first_fresh THEN
                    v_fresh := v_step;
                ELSE
                    v_replayed := true;
                END IF;
            END IF;
            v_step := v_step + 1;
        END LOOP;
        v_secret := NULL;
        IF v_fresh IS NOT NULL THEN
            -- Accepted only by moving the watermark forward.
            UPDATE pam_totp.login_state AS s
            SET used_until = (v_fresh + 1) * e.period, last_success = v_now,
                failures_since_success = 0,
                failures = CASE WHEN v_console THEN s.failures ELSE 0 END,
                locked_until = CASE WHEN v_console THEN s.locked_until ELSE 0 END,
                console_failures = CASE WHEN v_console THEN 0 ELSE s.console_failures END,
                console_locked_until = CASE WHEN v_console THEN 0 ELSE s.console_locked_until END
            WHERE s.user_name = p_user AND s.used_until <= v_fresh * e.period;
            IF FOUND THEN
                RETURN QUERY SELECT 'accepted'::text, 0, 0::bigint, 0::bigint, NULL::integer;
                RETURN;
            END IF;
            v_replayed := true;
        END IF;
        v_verdict := CASE WHEN v_replayed THEN 'replayed_code' ELSE 'invalid_code' END;
    ELSIF v_verdict IN ('recovery', 'scratch') THEN
        v_index := NULL;
        IF v_verdict = 'recovery' THEN
            v_index := position(substr(v_code, 1, 1) IN '0123456789abcdefghjkmnpqrstvwxyz') - 1;
            v_hash := e.recovery_hashes[v_index + 1];
            IF v_hash IS NULL OR pam_totp_crypto.crypt(v_code, v_hash) <> v_hash THEN
                v_index := NULL;
            END IF;
        ELSE
            FOR i IN 1 .. cardinality(e.recovery_hashes) LOOP
                IF pam_totp_crypto.crypt(v_code, e.recovery_hashes[i]) = e.recovery_hashes[i] THEN
                    v_index := i - 1;
                END IF;
            END LOOP;
        END IF;
        IF v_index IS NULL THEN
            v_verdict := 'invalid_recovery_code';
        ELSE
            v_bit := 1::bigint << v_index;
            v_used := CASE WHEN st.recovery_epoch = e.recovery_epoch THEN st.recovery_used ELSE 0 END
                      & ((1::bigint << cardinality(e.recovery_hashes)) - 1);
            IF v_used & v_bit <> 0 THEN
                v_verdict := 'recovery_code_already_used';
            ELSE
                UPDATE pam_totp.login_state AS s
                SET recovery_used = v_used | v_bit, recovery_epoch = e.recovery_epoch,
                    last_success = v_now, failures_since_success = 0,
                    failures = CASE WHEN v_console THEN s.failures ELSE 0 END,
                    locked_until = CASE WHEN v_console THEN s.locked_until ELSE 0 END,
                    console_failures = CASE WHEN v_console THEN 0 ELSE s.console_failures END,
                    console_locked_until = CASE WHEN v_console THEN 0 ELSE s.console_locked_until END
                WHERE s.user_name = p_user;
                RETURN QUERY SELECT 'accepted_recovery'::text, 0, 0::bigint, 0::bigint,
                    cardinality(e.recovery_hashes) - bit_count((v_used | v_bit)::bit(64))::integer;
                RETURN;
            END IF;
        END IF;
    END IF;

    -- A failure: counted on the channel, with the lock-out it starts (lockout.rs;
    -- pam_totp.lockout_after, version 2).
    v_failures := least(v_failures, 2147483646) + 1;
    UPDATE pam_totp.login_state AS s
    SET failures = CASE WHEN v_console THEN s.failures ELSE v_failures END,
        locked_until = CASE WHEN v_console THEN s.locked_until
                            ELSE pam_totp.lockout_after(v_failures, s.locked_until, v_now,
                                     pol.max_failures, pol.lockout_seconds, pol.lockout_max_seconds) END,
        console_failures = CASE WHEN v_console THEN v_failures ELSE s.console_failures END,
        console_locked_until = CASE WHEN v_console
                                    THEN pam_totp.lockout_after(v_failures, s.console_locked_until, v_now,
                                             pol.max_failures, pol.lockout_seconds, pol.lockout_max_seconds)
                                    ELSE s.console_locked_until END,
        failures_since_success = least(s.failures_since_success, 2147483646) + 1,
        last_failure = v_now,
        last_failure_source = left(coalesce(p_source, ''), 64)
    WHERE s.user_name = p_user
    RETURNING CASE WHEN v_console THEN s.console_locked_until ELSE s.locked_until END INTO v_floor;
    RETURN QUERY SELECT v_verdict, v_failures,
                        CASE WHEN v_floor > v_now THEN v_floor ELSE 0 END, 0::bigint, NULL::integer;
END
$$;

REVOKE ALL ON FUNCTION pam_totp.at_rest_key() FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.seal_secret(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.open_secret(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.hotp(bytea, bigint, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_may_check(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.console_channel(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.decoy_work(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_lookup(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_verify(text, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.host_lookup(text, boolean) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_verify(text, text, boolean, text) TO pam_totp_host;
