/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The continuous views of the current database, read from flowstate.view.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_CATALOG_H
#define FLOWSTATE_CATALOG_H

#include "nodes/pg_list.h"

extern bool CatalogExtensionPresent(void);

/*
 * The prefix of the logical message (an array of table oids) that tells the
 * decoder that the indexes of tables views over other tables join were
 * built again (api/ddl.c): it rebuilds those views.
 */
#define DIMENSION_MESSAGE_PREFIX "flowstate.dimensions"

/*
 * SQL: whether the definition of continuous view `view` (an alias of
 * flowstate.view) reads relation `rel` (an expression): its source, or a
 * table it joins, on which the definition's rule depends.
 */
#define CATALOG_VIEW_READS_SQL(view, rel) \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d" \
	"          ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid" \
	"         WHERE r.ev_class = " view ".definition" \
	"           AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"           AND d.refobjid = " rel ")"
typedef bool (*CatalogKnownView) (int32 view_id, Oid state_relid);

extern List *CatalogLoadViews(MemoryContext cxt, CatalogKnownView known, Oid stream);
struct ViewDef;
extern int64 CatalogMemoryLimit(const struct ViewDef *def);

#endif							/* FLOWSTATE_CATALOG_H */
