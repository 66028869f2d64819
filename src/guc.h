/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  Configuration parameters of flowstate (all named flowstate.*).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_GUC_H
#define FLOWSTATE_GUC_H

extern int	flowstate_max_workers;
extern int	flowstate_naptime;
extern int	flowstate_restart_delay;
extern int	flowstate_flush_interval;
extern int	flowstate_memory_limit;
extern int	flowstate_evaluation_timeout;
extern int	flowstate_open_transaction_memory;

/* A failing worker's restart delay doubles up to this many times the base. */
#define FLOWSTATE_BACKOFF_MAX_FACTOR 64

extern void GucInit(void);

#endif							/* FLOWSTATE_GUC_H */
