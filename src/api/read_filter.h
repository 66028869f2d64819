/*-------------------------------------------------------------------------
 *
 * read_filter.h
 *	  A read's conditions on the group keys of a continuous view, passed
 *	  to the functions its SQL calls.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_READ_FILTER_H
#define FLOWSTATE_READ_FILTER_H

extern void ReadFilterInit(void);

#endif							/* FLOWSTATE_READ_FILTER_H */
