-- The refresh rotation as PostgreSQL alone runs it: the same statements as service/flows/refresh.py sends
-- (look up and lock the token and its session, spend it, insert its child, touch the session).
-- Client k rotates the chain of seeded session :offset + k; \gset carries the newest token id
-- from one transaction to the next, so each lookup is by primary key, as in the service.
\set idx :offset + :client_id
BEGIN;
SELECT rt.id AS tok, rt.verifier, rt.expires_at, rt.spent_at, s.id AS sid, s.user_id,
    s.last_used_at, s.expires_at AS session_expires_at, s.revoked_at, u.email,
    u.created_at AS user_created_at, u.disabled_at
FROM refresh_token rt JOIN session s ON s.id = rt.session_id JOIN "user" u ON u.id = s.user_id
WHERE rt.id = CASE WHEN :tok = 'start' THEN md5('bench-token-' || :idx)::uuid ELSE :tok::text::uuid END
FOR UPDATE OF rt, s \gset
UPDATE refresh_token SET spent_at = now() WHERE id = :tok;
INSERT INTO refresh_token (id, session_id, parent_id, verifier, issued_at, expires_at)
VALUES (gen_random_uuid(), :sid, :tok, '\x00000000000000000000000000000000', now(),
    now() + interval '14 days')
RETURNING id AS tok \gset
UPDATE session SET last_used_at = now(), user_agent = 'pgbench', ip = '127.0.0.1' WHERE id = :sid;
COMMIT;
