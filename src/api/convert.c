/*-------------------------------------------------------------------------
 *
 * convert.c
 *	  The conversion of state tables to the state format of 0.5.0:
 *	  flowstate.convert_states(), which the update script to 0.5.0 calls
 *	  once and drops.
 *
 * Up to 0.4.0 a group's state was the memory image of its block
 * (state_format.c, format 1); from 0.5.0 it is written field by field
 * (format 2).  The conversion reads each state of format 1 with the
 * structs of this library, whose layout is that of the image on the same
 * server, and writes it again in format 2.  Until the update commits the
 * workers keep writing format 1 (state_table.c asks the extension's
 * version), and both formats are read, so the library can be installed
 * and the server restarted before the update.
 *
 * The state tables are locked first, all of them, in EXCLUSIVE mode and in
 * the order of their OIDs, the order in which a flush locks them: a flush
 * under way ends first, and the next one, once the update commits, writes
 * format 2.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "aggregates/aggregate.h"
#include "query/query.h"

#define CONVERT_BATCH 1000

extern PGDLLEXPORT Datum flowstate_convert_states(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_convert_states);

typedef struct ConvertedView
{
	Oid			view_relid;
	Oid			def_relid;
	Oid			state_relid;
} ConvertedView;

/* Rewrite the states of format 1 of one view's state table; returns their count. */
static int64
convert_table(const ConvertedView *cv, const ViewLayout *layout, const char *view_name)
{
	char	   *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(cv->state_relid)),
												   get_rel_name(cv->state_relid));
	Oid			types[2] = {INT8OID, BYTEAOID};
	SPIPlanPtr	update;
	Portal		cursor;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "flowstate convert",
												 ALLOCSET_DEFAULT_SIZES);
	char	   *block = palloc(layout->block_size);
	int64		converted = 0;
	int64		unreadable = 0;
	const char *first_problem = NULL;

	update = SPI_prepare(psprintf("UPDATE %s SET state = $2 WHERE gid = $1", table), 2, types);
	if (update == NULL)
		elog(ERROR, "could not prepare the conversion of %s: %s", table,
			 SPI_result_code_string(SPI_result));
	cursor = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT gid, state FROM %s"
												" WHERE pg_catalog.substr(state, 1, 1) = '\\x01'::pg_catalog.bytea",
												table),
									   0, NULL, NULL, NULL, false, 0);
	for (;;)
	{
		SPITupleTable *tuptable;
		uint64		n;

		SPI_cursor_fetch(cursor, true, CONVERT_BATCH);
		tuptable = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(rowcxt);
			bool		isnull;
			Datum		gid = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &isnull);
			Datum		state = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &isnull);
			int			format;
			const char *problem;

			problem = isnull ? "it is NULL" :
				AggDecode(layout, DatumGetByteaPP(state), block, &format);
			if (problem)
			{
				/* left as it is: the worker stops the view when it reads it */
				if (unreadable++ == 0)
					first_problem = MemoryContextStrdup(TopTransactionContext, problem);
			}
			else
			{
				Datum		args[2];

				args[0] = gid;
				args[1] = PointerGetDatum(AggSerialize(layout, block));
				if (SPI_execute_plan(update, args, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not convert a state of %s", table);
				converted++;
			}
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		SPI_freetuptable(tuptable);
	}
	SPI_cursor_close(cursor);
	SPI_freeplan(update);
	MemoryContextDelete(rowcxt);

	if (unreadable > 0)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%lld states of continuous view \"%s\" cannot be read and were not converted",
						(long long) unreadable, view_name),
				 errdetail("The first cannot be read because %s.", first_problem),
				 errhint("Drop the continuous view with flowstate.drop_view() and create it again.")));
	return converted;
}

/*
 * flowstate_convert_states rewrites every state of format 1 of every
 * continuous view of the database in format 2, and returns their count.
 * States that cannot be read are left as they are, with a warning.
 */
Datum
flowstate_convert_states(PG_FUNCTION_ARGS)
{
	ConvertedView *views;
	int			n;
	int64		converted = 0;

	SPI_connect();
	if (SPI_execute("SELECT view::oid, definition::oid, state_table::oid FROM flowstate.view"
					" ORDER BY state_table::oid", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	n = (int) SPI_processed;
	views = palloc(sizeof(ConvertedView) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		views[i].view_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull));
		views[i].def_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2, &isnull));
		views[i].state_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
															  SPI_tuptable->tupdesc, 3, &isnull));
	}

	/* all of them first, in the order a flush locks them */
	for (int i = 0; i < n; i++)
		LockRelationOid(views[i].state_relid, ExclusiveLock);

	for (int i = 0; i < n; i++)
	{
		ViewDef    *def = palloc0(sizeof(ViewDef));
		Query	   *query = QueryOfDefinition(views[i].def_relid);
		char	   *name = get_rel_name(views[i].view_relid);

		if (query == NULL || name == NULL || get_rel_name(views[i].state_relid) == NULL)
			continue;
		QueryDescribe(query, def);
		converted += convert_table(&views[i], &def->layout,
								   quote_qualified_identifier(get_namespace_name(get_rel_namespace(views[i].view_relid)),
															  name));
	}
	SPI_finish();
	PG_RETURN_INT64(converted);
}
