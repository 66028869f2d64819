/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Defines every flowstate.* configuration parameter.
 *
 * Parameters that size shared memory are PGC_POSTMASTER; tuning knobs are
 * PGC_SIGHUP so that a reload reaches the launcher and every worker.  Each
 * one has a row in the README's configuration table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "guc.h"

int			flowstate_max_workers = 32;
int			flowstate_naptime = 1000;
int			flowstate_restart_delay = 1000;
int			flowstate_flush_interval = 1000;
int			flowstate_memory_limit = 1024 * 1024;	/* kB */
int			flowstate_open_transaction_memory = 64 * 1024;	/* kB */
int			flowstate_evaluation_timeout = 1000;

/*
 * GucInit defines the parameters and reserves the flowstate prefix.
 */
void
GucInit(void)
{
	DefineCustomIntVariable("flowstate.max_workers",
							"Maximum number of flowstate background workers (managers and source workers).",
							"Sizes the worker registry in shared memory; the workers also count against max_worker_processes.",
							&flowstate_max_workers,
							32, 2, 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.naptime",
							"Time between two catalog scans of the launcher and of each manager.",
							"Bounds how long a new database or a dropped extension goes unnoticed when no backend signals it.",
							&flowstate_naptime,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.restart_delay",
							"Delay before a failed flowstate worker is started again.",
							"The delay doubles with each consecutive failure, up to 64 times this value.",
							&flowstate_restart_delay,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.flush_interval",
							"Time between two flushes of the continuous views' state to their state tables.",
							"The state tables and the source position advance together once per interval; a crash loses nothing, but replays up to this much input.",
							&flowstate_flush_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.memory_limit",
							"Shared memory the continuous views of the server may hold in all.",
							"When it is reached, workers evict flushed groups to their state tables, then stop consuming until memory is free again.",
							&flowstate_memory_limit,
							1024 * 1024, 1024, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.evaluation_timeout",
							"Longest a continuous view may take to evaluate its expressions on one row.",
							"A row that takes longer is a dead letter of its view (SQLSTATE 57014), so that a slow function cannot stall the other views of its source. 0 turns the limit off.",
							&flowstate_evaluation_timeout,
							1000, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("flowstate.open_transaction_memory",
							"Memory the decoder may take for the transactions it decodes before they commit.",
							"A large transaction is decoded while it runs and its changes are pre-aggregated per view and group until it commits; past this much in all, the largest transaction's deltas go to a temporary file.",
							&flowstate_open_transaction_memory,
							64 * 1024, 64, INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("flowstate");
}
