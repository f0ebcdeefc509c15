-- Every changed row tells the nodes listening on "<schema>.sentences" which
-- sentence changed ("INSERT <uuid>", "UPDATE <uuid>", "DELETE <uuid>"), so
-- each node reads that row instead of the whole table; a TRUNCATE says
-- "TRUNCATE" (reload in full). A node that gathers more changed rows than it
-- reads one by one (an import) reloads in full as well. A node of an older
-- version reloads on any notification, as before.
DROP TRIGGER sentences_changed ON sentences;

CREATE FUNCTION notify_sentence_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.sentences', TG_OP || ' ' || OLD.uuid::text);
    ELSE
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.sentences', TG_OP || ' ' || NEW.uuid::text);
        IF TG_OP = 'UPDATE' AND OLD.uuid IS DISTINCT FROM NEW.uuid THEN
            PERFORM pg_notify(TG_TABLE_SCHEMA || '.sentences', 'DELETE ' || OLD.uuid::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sentence_row_changed
    AFTER INSERT OR UPDATE OR DELETE ON sentences
    FOR EACH ROW EXECUTE FUNCTION notify_sentence_row();

CREATE TRIGGER sentences_truncated
    AFTER TRUNCATE ON sentences
    FOR EACH STATEMENT EXECUTE FUNCTION notify_sentences();
