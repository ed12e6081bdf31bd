//! What the emulator installs in each database on its first connection, so PostgreSQL refuses
//! what Redshift refuses: Redshift's types and functions, and CHECK constraints (added by an
//! event trigger to every table created or altered) for Redshift's value rules. The README's
//! "Redshift value rules" section lists them with their sources.
//!
//! Each block is idempotent and takes an advisory lock, so emulators that connect to one
//! database at once install it once. Blocks run separately: one that fails (the type and the
//! event trigger need a superuser) leaves the others in place.

/// Serializes installers across emulators and processes (an arbitrary constant).
const LOCK: &str = "PERFORM pg_advisory_xact_lock(7262013370);";

/// `varbyte` (a domain over bytea, at most Redshift's default VARBYTE length) and `to_varbyte`.
const VARBYTE: &str = r#"
  IF to_regtype('public.varbyte') IS NULL THEN
    CREATE DOMAIN public.varbyte AS bytea;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conname = 'rdl_varbyte_max'
                 AND contypid = 'public.varbyte'::regtype) THEN
    ALTER DOMAIN public.varbyte ADD CONSTRAINT rdl_varbyte_max CHECK (octet_length(VALUE) <= 64000);
  END IF;
  IF to_regprocedure('public.to_varbyte(text, text)') IS NULL THEN
    CREATE FUNCTION public.to_varbyte(text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
      AS 'SELECT pg_catalog.decode($1, $2)';
  END IF;
"#;

/// `super`: JSON text that only JSON_PARSE makes. Its input function is PostgreSQL's `any_in`,
/// which refuses every literal ("cannot accept a value of type any"), so a string never becomes
/// a SUPER by itself. JSON_PARSE stores compact JSON (whitespace outside strings removed), as
/// Redshift serializes SUPER.
const SUPER: &str = r#"
  IF to_regtype('public.super') IS NULL THEN
    CREATE TYPE public.super;
    CREATE FUNCTION public.super_in(cstring) RETURNS public.super
      LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'any_in';
    CREATE FUNCTION public.super_out(public.super) RETURNS cstring
      LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE AS 'json_out';
    CREATE TYPE public.super (INPUT = public.super_in, OUTPUT = public.super_out, LIKE = json);
    CREATE CAST (json AS public.super) WITHOUT FUNCTION;
    CREATE CAST (public.super AS json) WITHOUT FUNCTION AS IMPLICIT;
    CREATE FUNCTION public.json_parse(text) RETURNS public.super LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $f$ SELECT pg_catalog.regexp_replace(($1::json)::text, E'("(?:[^"\\\\]|\\\\.)*")|\\s+', E'\\1', 'g')
                    ::json::public.super $f$;
    CREATE FUNCTION public.json_serialize(public.super) RETURNS varchar LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $f$ SELECT ($1::json)::text $f$;
  END IF;
"#;

/// The event trigger that keeps every user table's `rdl_<attnum>_<rule>` CHECK constraints in
/// step with its columns, and refuses column types Redshift refuses. `errors::rule_text` maps
/// a violated constraint's name to Redshift's text.
const COLUMN_RULES: &str = r#"
  IF to_regprocedure('public.rdl_column_rules_v1()') IS NULL THEN
  CREATE FUNCTION public.rdl_column_rules_v1() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
  DECLARE
    rel oid;
    col record;
    wanted text[];
    clauses text[];
    name text;
    expr text;
    p int;
    s int;
    n int;
  BEGIN
    IF current_setting('rdl.rules_busy', true) = 'on' THEN
      RETURN;
    END IF;
    FOR rel IN
      SELECT DISTINCT c.objid FROM pg_event_trigger_ddl_commands() c
      JOIN pg_catalog.pg_class r ON r.oid = c.objid
      JOIN pg_catalog.pg_namespace ns ON ns.oid = r.relnamespace
      WHERE c.classid = 'pg_catalog.pg_class'::regclass AND r.relkind IN ('r', 'p')
        AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND NOT starts_with(ns.nspname, 'pg_toast')
    LOOP
      wanted := '{}';
      clauses := '{}';
      FOR col IN
        SELECT a.attnum, a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
      LOOP
        name := NULL;
        IF col.atttypid = 'pg_catalog.numeric'::regtype AND col.atttypmod >= 4 THEN
          p := ((col.atttypmod - 4) >> 16) & 65535;
          s := (col.atttypmod - 4) & 65535;
          IF p > 38 THEN
            RAISE EXCEPTION 'NUMERIC precision % must be between 1 and 38', p USING ERRCODE = 'invalid_parameter_value';
          END IF;
          IF s > 37 THEN
            RAISE EXCEPTION 'NUMERIC scale % must be between 0 and 37', s USING ERRCODE = 'invalid_parameter_value';
          END IF;
          IF p = 19 THEN
            name := format('rdl_%s_decimal19', col.attnum);
            expr := format('abs(%I) * 1e%s <= 9223372036854775807', col.attname, s);
          END IF;
        ELSIF col.atttypid = 'pg_catalog.varchar'::regtype AND col.atttypmod >= 4 THEN
          n := col.atttypmod - 4;
          IF n > 65535 THEN
            RAISE EXCEPTION 'length for type varchar cannot exceed 65535' USING ERRCODE = 'invalid_parameter_value';
          END IF;
          name := format('rdl_%s_varchar%s', col.attnum, n);
          expr := format('octet_length(%I) <= %s', col.attname, n);
        ELSIF col.atttypid = 'pg_catalog.bpchar'::regtype THEN
          IF col.atttypmod - 4 > 4096 THEN
            RAISE EXCEPTION 'length for type character cannot exceed 4096' USING ERRCODE = 'invalid_parameter_value';
          END IF;
          name := format('rdl_%s_ascii', col.attnum);
          expr := format('octet_length(%I::text) = char_length(%I::text)', col.attname, col.attname);
        END IF;
        IF name IS NOT NULL THEN
          wanted := wanted || name;
          IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = rel AND conname = name) THEN
            clauses := clauses || format('ADD CONSTRAINT %I CHECK (%s)', name, expr);
          END IF;
        END IF;
      END LOOP;
      -- Constraints of columns that changed type or were copied by LIKE … INCLUDING CONSTRAINTS.
      SELECT clauses || coalesce(array_agg(format('DROP CONSTRAINT %I', conname)), '{}') INTO clauses
      FROM pg_catalog.pg_constraint
      WHERE conrelid = rel AND contype = 'c' AND starts_with(conname, 'rdl_') AND coninhcount = 0
        AND NOT (conname = ANY (wanted));
      IF cardinality(clauses) > 0 THEN
        PERFORM set_config('rdl.rules_busy', 'on', true);
        EXECUTE format('ALTER TABLE %s %s', rel::regclass, array_to_string(clauses, ', '));
        PERFORM set_config('rdl.rules_busy', 'off', true);
      END IF;
    END LOOP;
  END
  $fn$;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'rdl_column_rules_v1') THEN
    CREATE EVENT TRIGGER rdl_column_rules_v1 ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
      EXECUTE FUNCTION public.rdl_column_rules_v1();
  END IF;
"#;

/// COPY's helpers (see `copy/`): `rdl_copy_reject()`, which a conversion calls for a field its
/// pattern refuses (the message is never shown: the COPY reports a load error), and
/// `stl_load_errors`, where a failed COPY says which file, line and column failed, never the
/// value (Developer Guide *STL_LOAD_ERRORS*; the string columns are `text`).
const COPY: &str = r#"
  IF to_regprocedure('public.rdl_copy_reject()') IS NULL THEN
    CREATE FUNCTION public.rdl_copy_reject() RETURNS text LANGUAGE plpgsql VOLATILE AS $f$
    BEGIN
      RAISE EXCEPTION 'redshift-data-local: a COPY field does not convert to its column type'
        USING ERRCODE = 'invalid_text_representation';
    END
    $f$;
  END IF;
  IF to_regclass('public.stl_load_errors') IS NULL THEN
    CREATE TABLE public.stl_load_errors (
      userid integer, slice integer, tbl integer, starttime timestamp, session integer, query bigint,
      filename text, line_number bigint, colname text, type text, col_length text, position integer,
      raw_line text, raw_field_value text, err_code integer, err_reason text, is_partial integer,
      start_offset bigint);
    GRANT SELECT ON public.stl_load_errors TO PUBLIC;
  END IF;
"#;

/// True (`t`) when every shim is in place, so a new emulator's first connection to a database
/// costs one query rather than the blocks and their lock.
pub const INSTALLED: &str = "SELECT to_regtype('public.varbyte') IS NOT NULL \
    AND to_regprocedure('public.to_varbyte(text, text)') IS NOT NULL \
    AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conname = 'rdl_varbyte_max') \
    AND to_regprocedure('public.json_parse(text)') IS NOT NULL \
    AND to_regprocedure('public.json_serialize(public.super)') IS NOT NULL \
    AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'rdl_column_rules_v1') \
    AND to_regprocedure('public.rdl_copy_reject()') IS NOT NULL \
    AND to_regclass('public.stl_load_errors') IS NOT NULL";

/// The blocks to run, each as one `DO` statement, with a name for logs.
pub fn blocks() -> [(&'static str, String); 4] {
    [("varbyte", VARBYTE), ("super", SUPER), ("column rules", COLUMN_RULES), ("copy", COPY)]
        .map(|(name, body)| (name, format!("DO $shim$\nBEGIN\n  {LOCK}\n{body}\nEND\n$shim$")))
}
