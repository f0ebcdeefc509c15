-- Every change to the sentences tells the nodes listening on
-- "<schema>.sentences" to reload their snapshot (one notification per
-- statement, so an import of 10,000 rows sends one).
CREATE FUNCTION notify_sentences() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '.sentences', TG_OP);
    RETURN NULL;
END
$$;

CREATE TRIGGER sentences_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sentences
    FOR EACH STATEMENT EXECUTE FUNCTION notify_sentences();
