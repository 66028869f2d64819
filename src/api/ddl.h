/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  flowstate's reaction to utility statements.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_DDL_H
#define FLOWSTATE_DDL_H

extern void DdlInit(void);

#endif							/* FLOWSTATE_DDL_H */
