-- pam_totp schema, version 4 (issue #17, part A): clock trouble explained, failed
-- attempts shown at the next good login.
--
-- host_verify gains result columns: offset_seconds (a wrong code that is right for a
-- step within 600 s of the database's clock but outside the window: still refused and
-- counted; the host tells the user which way their clock is off), and, on acceptance,
-- failures_before / last_failure / last_failure_source (the failed attempts this
-- success ends, which 0003 already kept in login_state). login_state keeps the last
-- offset seen (last_offset, for `totp-enroll status`) and the hinted step, burnt
-- (hinted_step_start). decoy_work searches as many
-- steps as an enrolled user's wrong code now costs, so that the time still does not
-- tell who is enrolled. Changing a function's result needs DROP + CREATE + GRANT.

ALTER TABLE pam_totp.login_state
    ADD COLUMN last_offset integer NOT NULL DEFAULT 0 CHECK (abs(last_offset) <= 86400),
    -- The start (Unix time) of the step ahead a hint was given for: its code is refused
    -- as used, and no other hint is given while it may still come into the window, so
    -- a guesser told "your code is for 3 minutes from now" cannot use it then.
    ADD COLUMN hinted_step_start bigint NOT NULL DEFAULT 0;

-- An enrolled user's wrong code: the window's steps, then every step within 600 s
-- outside it (2 * 600 / 30 + 1 = 41 HMACs at the usual period, whatever the window).
CREATE OR REPLACE FUNCTION pam_totp.decoy_work(p_window integer)
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
    FOR step IN 0 .. 2 * greatest(600 / 30, p_window) LOOP
        junk := pam_totp.hotp('\x0000000000000000000000000000000000000000'::bytea, step, 'SHA1', 6);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION pam_totp.host_verify(text, text, boolean, text) FROM pam_totp_host;
DROP FUNCTION pam_totp.host_verify(text, text, boolean, text);

-- The answer, checked inside the database (as 0003), with the clock hint and the
-- failed-attempts report.
CREATE FUNCTION pam_totp.host_verify(p_user text, p_answer text, p_console boolean, p_source text)
RETURNS TABLE (verdict text, failures integer, locked_until bigint,
               locked_until_before bigint, recovery_left integer,
               offset_seconds integer, failures_before integer,
               last_failure bigint, last_failure_source text)
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
    v_reach bigint;
    v_near bigint;
    v_offset integer;
BEGIN
    SELECT * INTO pol FROM pam_totp.policy;
    IF p_user IS NULL OR NOT pam_totp.host_may_check(p_user) THEN
        PERFORM pam_totp.decoy_work(pol.window_steps);
        RETURN QUERY SELECT 'not_allowed'::text, 0, 0::bigint, 0::bigint, NULL::integer,
                            NULL::integer, NULL::integer, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    SELECT * INTO e FROM pam_totp.enrollments en WHERE en.user_name = p_user;
    IF NOT FOUND THEN
        PERFORM pam_totp.decoy_work(pol.window_steps);
        RETURN QUERY SELECT 'not_enrolled'::text, 0, 0::bigint, 0::bigint, NULL::integer,
                            NULL::integer, NULL::integer, NULL::bigint, NULL::text;
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
        RETURN QUERY SELECT 'locked_out'::text, v_failures, v_before, v_before, NULL::integer,
                            NULL::integer, NULL::integer, NULL::bigint, NULL::text;
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
                IF v_step >= v_first_fresh AND v_step * e.period <> st.hinted_step_start THEN
                    v_fresh := v_step;
                ELSE
                    v_replayed := true;
                END IF;
            END IF;
            v_step := v_step + 1;
        END LOOP;
        -- A wrong code only: the steps within 600 s outside the window, all computed
        -- (as decoy_work does), the nearest fresh match kept: the clock hint.
        IF v_fresh IS NULL AND NOT v_replayed THEN
            v_reach := greatest(600 / e.period, pol.window_steps);
            v_step := greatest(v_current - v_reach, 0);
            WHILE v_step <= v_current + v_reach LOOP
                IF abs(v_step - v_current) > pol.window_steps
                   AND pam_totp.hotp(v_secret, v_step, e.algorithm, e.digits) = v_code
                   AND v_step >= v_first_fresh
                   AND (v_near IS NULL OR abs(v_step - v_current) < abs(v_near - v_current)) THEN
                    v_near := v_step;
                END IF;
                v_step := v_step + 1;
            END LOOP;
            IF st.hinted_step_start < (v_current - pol.window_steps) * e.period THEN
                v_offset := ((v_near - v_current) * e.period)::integer;
            END IF;
        END IF;
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
                RETURN QUERY SELECT 'accepted'::text, 0, 0::bigint, 0::bigint, NULL::integer,
                                    NULL::integer, st.failures_since_success,
                                    st.last_failure, st.last_failure_source;
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
                    cardinality(e.recovery_hashes) - bit_count((v_used | v_bit)::bit(64))::integer,
                    NULL::integer, st.failures_since_success, st.last_failure, st.last_failure_source;
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
        last_failure_source = left(coalesce(p_source, ''), 64),
        last_offset = coalesce(v_offset, s.last_offset),
        hinted_step_start = CASE WHEN v_offset > 0 THEN v_near * e.period
                                 ELSE s.hinted_step_start END
    WHERE s.user_name = p_user
    RETURNING CASE WHEN v_console THEN s.console_locked_until ELSE s.locked_until END INTO v_floor;
    RETURN QUERY SELECT v_verdict, v_failures,
                        CASE WHEN v_floor > v_now THEN v_floor ELSE 0 END, 0::bigint, NULL::integer,
                        v_offset, NULL::integer, NULL::bigint, NULL::text;
END
$$;

REVOKE ALL ON FUNCTION pam_totp.decoy_work(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_totp.host_verify(text, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pam_totp.host_verify(text, text, boolean, text) TO pam_totp_host;
