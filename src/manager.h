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

PGDLLEXPORT extern void ManagerMain(Datum main_arg);

#endif							/* FLOWSTATE_MANAGER_H */
