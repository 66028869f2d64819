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
typedef bool (*CatalogKnownView) (int32 view_id, Oid state_relid);

extern List *CatalogLoadViews(MemoryContext cxt, CatalogKnownView known, Oid stream);
struct ViewDef;
extern int64 CatalogMemoryLimit(const struct ViewDef *def);

#endif							/* FLOWSTATE_CATALOG_H */
