/*-------------------------------------------------------------------------
 *
 * manager.h
 *	  The per-database flowstate manager worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_MANAGER_H
#define FLOWSTATE_MANAGER_H

#include "postgres.h"

PGDLLEXPORT extern void flowstate_manager_main(Datum main_arg);
extern void ManagerDecoderSlotName(Oid dboid, char *name);
extern void ManagerDropDecoderSlot(Oid dboid);

#endif							/* FLOWSTATE_MANAGER_H */
