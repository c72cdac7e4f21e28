-- pam_totp schema, version 5 (issue #17, item 4): fewer codes without weaker logins, on
-- the database store: remembered keys (`remember_key_seconds`) and verified audit
-- sessions (`step_up_seconds`).
--
-- A shortcut is scoped to the HOST ROLE that saw the code (session_user), never to a
-- realm: one compromised host must not let itself, or anyone, skip codes on the others.
-- A host can never mint one without a right code: host_remember_keys and
-- host_expect_session succeed only when this host role's host_verify accepted a code (or
-- recovery code) of that user less than SHORTCUT_GRANT_SECONDS (120) before, once per
-- acceptance and kind (0006's last_acceptance, written by its trigger on login_state).
-- Durations are the host's (its config) capped here at 43200 s; times are the database's.
-- Session tickets are kept as their SHA-256 only.
-- The same rules as 0003: SECURITY DEFINER, fixed search_path, realms of session_user,
-- the database's clock, EXECUTE granted only to pam_totp_host.
--
-- Applied before or after 0006 (each is applied when missing, in list order): the
-- functions below read 0006's last_acceptance when called, never when created.

-- (user, host role, fingerprint of a key sshd verified): no code until expires_at.
CREATE TABLE pam_totp.remembered_keys (
    user_name text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    host_role text NOT NULL,
    fingerprint text NOT NULL CHECK (fingerprint ~ '^SHA256:[A-Za-z0-9+/]{43}$'),
    expires_at bigint NOT NULL,
    PRIMARY KEY (user_name, host_role, fingerprint)
);

-- A login's ticket, waiting for its session hook (host_open_session): SHA-256 only.
CREATE TABLE pam_totp.session_tickets (
    user_name text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    host_role text NOT NULL,
    ticket_hash bytea NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (user_name, host_role, ticket_hash)
);

-- (host role, kernel audit session id): verified for user_name until expires_at. An
-- audit id belongs to one session of one host: one row per (host role, id).
CREATE TABLE pam_totp.verified_sessions (
    host_role text NOT NULL,
    audit_session bigint NOT NULL CHECK (audit_session BETWEEN 0 AND 4294967294),
    user_name text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 256),
    expires_at bigint NOT NULL,
    PRIMARY KEY (host_role, audit_session)
);

-- Which acceptance (its time) already minted a shortcut of each kind: once each.
CREATE TABLE pam_totp.shortcut_grants (
    user_name text NOT NULL,
    host_role text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('key', 'session')),
    accepted_at bigint NOT NULL,
    PRIMARY KEY (user_name, host_role, kind)
);

REVOKE ALL ON pam_totp.remembered_keys, pam_totp.session_tickets, pam_totp.verified_sessions,
              pam_totp.shortcut_grants FROM PUBLIC;

-- Seconds a host asked for, within 1 .. 43200; NULL when out of range.
CREATE FUNCTION pam_totp.shortcut_seconds(p_seconds integer)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
    SELECT CASE WHEN p_seconds BETWEEN 1 AND 43200 THEN p_seconds END
$$;

-- Whether this host role may now mint a shortcut of p_kind for p_user: its host_verify
-- accepted p_user's answer less than 120 s ago, and that acceptance minted none of this
-- kind yet (recorded here, so a second call is refused).
CREATE FUNCTION pam_totp.take_shortcut_grant(p_user text, p_kind text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_accepted bigint;
BEGIN
    SELECT a.accepted_at INTO v_accepted FROM pam_totp.last_acceptance a
    WHERE a.user_name = p_user AND a.host_role = session_user::text
      AND a.accepted_at BETWEEN v_now - 120 AND v_now
    FOR UPDATE;
    IF v_accepted IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO pam_totp.shortcut_grants AS g (user_name, host_role, kind, accepted_at)
    VALUES (p_user, session_user::text, p_kind, v_accepted)
    ON CONFLICT (user_name, host_role, kind) DO UPDATE SET accepted_at = EXCLUDED.accepted_at
    WHERE g.accepted_at < EXCLUDED.accepted_at;
    RETURN FOUND;
END
$$;

-- The remembered key among p_fingerprints of p_user on this host role that lasts
-- longest, and its end; no row when none is live.
CREATE FUNCTION pam_totp.host_remembered_key(p_user text, p_fingerprints text[])
RETURNS TABLE (fingerprint text, expires_at bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
BEGIN
    IF p_user IS NULL OR p_fingerprints IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT k.fingerprint, k.expires_at FROM pam_totp.remembered_keys k
    WHERE k.user_name = p_user AND k.host_role = session_user::text
      AND k.fingerprint = ANY (p_fingerprints) AND k.expires_at > v_now
    ORDER BY k.expires_at DESC
    LIMIT 1;
END
$$;

-- Remembers p_fingerprints (1 to 16 keys sshd verified) of p_user on this host role for
-- p_seconds, right after a code: whether it did.
CREATE FUNCTION pam_totp.host_remember_keys(p_user text, p_fingerprints text[], p_seconds integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_seconds integer := pam_totp.shortcut_seconds(p_seconds);
BEGIN
    IF p_user IS NULL OR v_seconds IS NULL OR NOT pam_totp.host_may_check(p_user)
       OR coalesce(cardinality(p_fingerprints), 0) NOT BETWEEN 1 AND 16
       OR array_position(p_fingerprints, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(p_fingerprints) f WHERE f !~ '^SHA256:[A-Za-z0-9+/]{43}$') THEN
        RETURN false;
    END IF;
    IF NOT pam_totp.take_shortcut_grant(p_user, 'key') THEN
        RETURN false;
    END IF;
    DELETE FROM pam_totp.remembered_keys k WHERE k.expires_at <= v_now;
    INSERT INTO pam_totp.remembered_keys AS k (user_name, host_role, fingerprint, expires_at)
    SELECT DISTINCT p_user, session_user::text, f, v_now + v_seconds FROM unnest(p_fingerprints) f
    ON CONFLICT (user_name, host_role, fingerprint) DO UPDATE SET expires_at = EXCLUDED.expires_at;
    RETURN true;
END
$$;

-- Right after a code: a session of p_user on this host role that shows p_ticket within
-- p_seconds (at most 600) may become verified. Whether it was recorded.
CREATE FUNCTION pam_totp.host_expect_session(p_user text, p_ticket text, p_seconds integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
BEGIN
    IF p_user IS NULL OR p_ticket IS NULL OR p_ticket !~ '^[0-9a-f]{32}$'
       OR coalesce(p_seconds, 0) NOT BETWEEN 1 AND 600 OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN false;
    END IF;
    IF NOT pam_totp.take_shortcut_grant(p_user, 'session') THEN
        RETURN false;
    END IF;
    DELETE FROM pam_totp.session_tickets t WHERE t.expires_at <= v_now;
    INSERT INTO pam_totp.session_tickets (user_name, host_role, ticket_hash, expires_at)
    VALUES (p_user, session_user::text, pam_totp_crypto.digest(p_ticket, 'sha256'), v_now + p_seconds)
    ON CONFLICT DO NOTHING;
    RETURN true;
END
$$;

-- Takes p_ticket (once, whatever follows) and, if it was p_user's on this host role and
-- still live, records audit session p_session as verified for p_seconds. Whether it did.
CREATE FUNCTION pam_totp.host_open_session(p_user text, p_ticket text, p_session bigint, p_seconds integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
    v_seconds integer := pam_totp.shortcut_seconds(p_seconds);
BEGIN
    IF p_user IS NULL OR p_ticket IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN false;
    END IF;
    DELETE FROM pam_totp.session_tickets t
    WHERE t.user_name = p_user AND t.host_role = session_user::text AND t.expires_at > v_now
      AND t.ticket_hash = pam_totp_crypto.digest(p_ticket, 'sha256');
    IF NOT FOUND OR v_seconds IS NULL OR p_session IS NULL
       OR p_session NOT BETWEEN 0 AND 4294967294 THEN
        RETURN false;
    END IF;
    DELETE FROM pam_totp.verified_sessions s WHERE s.expires_at <= v_now;
    -- Whatever the id was verified for before (another user's, an id reused after a
    -- reboot) is gone.
    INSERT INTO pam_totp.verified_sessions AS s (host_role, audit_session, user_name, expires_at)
    VALUES (session_user::text, p_session, p_user, v_now + v_seconds)
    ON CONFLICT (host_role, audit_session) DO UPDATE
    SET user_name = EXCLUDED.user_name, expires_at = EXCLUDED.expires_at;
    RETURN true;
END
$$;

-- The end of p_session's verification for p_user on this host role, or NULL.
CREATE FUNCTION pam_totp.host_verified_session(p_user text, p_session bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
DECLARE
    v_now bigint := floor(extract(epoch FROM now()))::bigint;
BEGIN
    IF p_user IS NULL OR p_session IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT s.expires_at FROM pam_totp.verified_sessions s
            WHERE s.host_role = session_user::text AND s.audit_session = p_session
              AND s.user_name = p_user AND s.expires_at > v_now);
END
$$;

-- Logout: p_session of p_user on this host role is no longer verified.
CREATE FUNCTION pam_totp.host_close_session(p_user text, p_session bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pam_totp, pg_temp
AS $$
BEGIN
    DELETE FROM pam_totp.verified_sessions s
    WHERE s.host_role = session_user::text AND s.audit_session = p_session AND s.user_name = p_user;
END
$$;

REVOKE ALL ON FUNCTION pam_totp.shortcut_seconds(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.take_shortcut_grant(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_remembered_key(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_remember_keys(text, text[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_expect_session(text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_open_session(text, text, bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_verified_session(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_close_session(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.host_remembered_key(text, text[]) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_remember_keys(text, text[], integer) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_expect_session(text, text, integer) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_open_session(text, text, bigint, integer) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_verified_session(text, bigint) TO pam_totp_host;
GRANT EXECUTE ON FUNCTION pam_totp.host_close_session(text, bigint) TO pam_totp_host;
