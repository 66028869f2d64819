/*-------------------------------------------------------------------------
 *
 * group.h
 *	  Group keys of continuous views: hashing, equality and the flat form
 *	  in which a key is stored next to its group's state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_GROUP_H
#define FLOWSTATE_GROUP_H

#include "fmgr.h"

#include "aggregates/layout.h"

/* Hash and equality functions of a layout's key columns, per backend. */
typedef struct GroupKeys
{
	const ViewLayout *layout;
	FmgrInfo	hash[FLOWSTATE_MAX_KEYS];
	FmgrInfo	eq[FLOWSTATE_MAX_KEYS];
} GroupKeys;

extern GroupKeys *GroupKeysCreate(const ViewLayout *layout);
extern bool GroupKeyTypeUsable(Oid type, Oid collation, bool *bitwise);

extern uint32 GroupKeyHash(const GroupKeys *gk, const Datum *values, const bool *isnull);
extern Size GroupKeySize(const ViewLayout *layout, const Datum *values, const bool *isnull);
extern void GroupKeyWrite(const ViewLayout *layout, const Datum *values,
						  const bool *isnull, char *dst);
extern void GroupKeyRead(const ViewLayout *layout, const char *src,
						 Datum *values, bool *isnull);
extern bool GroupKeyMatches(const GroupKeys *gk, const char *stored,
							const Datum *values, const bool *isnull);
extern bool GroupKeyEqual(const GroupKeys *gk, const Datum *a, const bool *anull,
						  const Datum *b, const bool *bnull);
extern void GroupKeyDetoast(const ViewLayout *layout, Datum *values, const bool *isnull);
extern bool GroupKeyPartIndexable(const ViewLayout *layout);
extern uint32 GroupKeyPartHash(const ViewLayout *layout, const Datum *values,
							   const bool *isnull);

#endif							/* FLOWSTATE_GROUP_H */
