/*-------------------------------------------------------------------------
 *
 * catalog_change.c
 *	  Telling the workers of a database that its views or histories changed.
 *
 * A transaction that creates or drops a continuous view or a history notes
 * it (ApiNoteCatalogChanged); at its commit the launcher wakes the
 * database's manager and source workers, which read the catalog again.
 * Nothing is said for a transaction that rolls back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"

#include "api/api.h"
#include "workers/launcher.h"

static bool catalog_changed = false;
static bool callback_registered = false;

static void
catalog_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && catalog_changed)
		LauncherViewsChanged(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		catalog_changed = false;
}

/* ApiNoteCatalogChanged: the workers read the catalog again once this transaction commits. */
void
ApiNoteCatalogChanged(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(catalog_xact_callback, NULL);
		callback_registered = true;
	}
	catalog_changed = true;
}
