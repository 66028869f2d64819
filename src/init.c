/*-------------------------------------------------------------------------
 *
 * init.c
 *	  Entry point of the flowstate library.
 *
 * flowstate must be loaded through shared_preload_libraries: it sizes
 * shared memory and registers its launcher at server start.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "api/ddl.h"
#include "api/read_filter.h"
#include "guc.h"
#include "workers/launcher.h"
#include "fs_catalog/partition.h"
#include "workers/registry.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

/*
 * _PG_init reads as the list of what flowstate adds to the server.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("flowstate must be loaded via shared_preload_libraries"),
				 errhint("Add flowstate to shared_preload_libraries in postgresql.conf and restart the server.")));

	GucInit();
	ShmemInit();
	DdlInit();
	ReadFilterInit();
	PartitionInit();

	/* pg_upgrade's servers must not run workers */
	if (IsBinaryUpgrade)
		return;

	LauncherRegister();
	LauncherWakeAtCommit();
}
