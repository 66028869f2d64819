/*-------------------------------------------------------------------------
 *
 * aggregate.h
 *	  Native aggregates of continuous views: signed accumulation, merge of a
 *	  delta into a group's state, and PostgreSQL's exact final results.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_AGGREGATE_H
#define FLOWSTATE_AGGREGATE_H

#include "fmgr.h"
#include "nodes/primnodes.h"

#include "aggregates/layout.h"

/* How a min/max aggregate compares values, per backend. */
typedef enum CompareKind
{
	CMP_NONE = 0,
	CMP_INT16,
	CMP_INT32,
	CMP_INT64,					/* int8, timestamp, timestamptz, time, money */
	CMP_FLOAT4,
	CMP_FLOAT8,
	CMP_GENERIC					/* the btree comparison function */
} CompareKind;

typedef struct AggRuntime
{
	const ViewLayout *layout;
	bool		has_generic;	/* AGG_GENERIC aggregates */
	bool		needs_xact;		/* merging needs a transaction: generic
								 * aggregates' functions may read the catalog */
	CompareKind cmpkind[FLOWSTATE_MAX_AGGS];
	FmgrInfo	cmp[FLOWSTATE_MAX_AGGS];
} AggRuntime;

extern bool AggIdentify(Aggref *aggref, AggSpec *spec);
extern const char *AggSupportedList(void);
extern void AggLayoutPlace(ViewLayout *layout);
extern Size AggFieldsSize(const AggSpec *spec);
extern AggRuntime *AggRuntimeCreate(const ViewLayout *layout);
extern bool AggHasGeneric(const ViewLayout *layout);
extern bool AggGenericPrepare(const ViewLayout *layout);
extern const char *AggGenericRefusal(Oid aggfnoid, int nargs);
extern Oid	AggGenericTransType(const AggSpec *spec);
extern void AggGenericFail(const ViewLayout *layout, char *block);
extern bool AggAdvanceRow(const AggRuntime *rt, int aggno, char *block,
						  const Datum *args, const bool *nulls);

extern void AggAccumulate(const AggRuntime *rt, int aggno, char *block,
						  Datum value, bool isnull, int sign, bool owned);
extern bool AggMerge(const AggRuntime *rt, char *target, const char *delta);
extern void AggCombine(const AggRuntime *rt, char *target, const char *delta);
extern bool AggKeepsFloatSums(const ViewLayout *layout);
extern bool AggCanOverflow(const ViewLayout *layout);
extern bool AggWouldOverflow(const AggRuntime *rt, int aggno, const char *base,
							 const char *delta, Datum value, int sign);
extern bool AggResultOverflows(const ViewLayout *layout, int aggno, const char *block);
extern bool AggOverflowed(const ViewLayout *layout, const char *block);
extern double AggInputMagnitude(const ViewLayout *layout, int aggno, Datum value);
extern bool AggLostPrecision(const ViewLayout *layout, const char *before, const char *delta,
							 const char *after, const double *magnitude);
extern bool AggIsEmpty(const ViewLayout *layout, const char *block);
extern void AggFinalize(const ViewLayout *layout, int aggno, const char *block,
						Datum *value, bool *isnull, bool *overflow);

/* shared_block.c: the packed form kept in shared memory */
extern void AggLayoutPack(ViewLayout *layout);
extern void AggPack(const ViewLayout *layout, const char *block, char *shared);
extern void AggUnpack(const ViewLayout *layout, const char *shared, char *block);

extern uint32 AggLayoutFingerprint(const ViewLayout *layout);
extern bytea *AggSerialize(const ViewLayout *layout, const char *block);
extern bytea *AggSerializeImage(const ViewLayout *layout, const char *block);
extern const char *AggDecodeImage(const ViewLayout *layout, const char *data, Size len,
								  char *block);
extern const char *AggDecode(const ViewLayout *layout, const bytea *state, char *block,
							 int *format);
extern void AggDeserialize(const ViewLayout *layout, const bytea *state,
						   char *block);
extern void AggCopyVars(const ViewLayout *layout, char *block);

#endif							/* FLOWSTATE_AGGREGATE_H */
