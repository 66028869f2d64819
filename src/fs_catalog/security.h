/*-------------------------------------------------------------------------
 *
 * security.h
 *	  Who a continuous view evaluates as (and in which time zone), and
 *	  whose rights its reads need.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SECURITY_H
#define FLOWSTATE_SECURITY_H

/* What SecurityEnter changed, for SecurityLeave to restore. */
typedef struct SecuritySave
{
	Oid			userid;
	int			sec_context;
	bool		read_only;
	bool		parallel;
	struct pg_tz *zone;
} SecuritySave;

/* Where flowstate's own statements and the workers resolve names. */
#define SECURITY_SEARCH_PATH "pg_catalog, pg_temp"

extern void SecurityWorkerInit(void);
extern int	SecurityRestrictSearchPath(void);
extern void SecurityRestoreSearchPath(int nest);
extern void SecurityEnter(Oid owner, struct pg_tz *zone, SecuritySave *save);
extern void SecurityLeave(const SecuritySave *save);
extern void SecurityAfterError(const SecuritySave *save);
extern void SecurityRestoreZone(const SecuritySave *save);

extern void SecurityTimerStart(void);
extern bool SecurityTimerStop(void);

extern Oid	SecurityRelationOwner(Oid relid);
extern bool SecurityCheckViewRights(Oid view_relid, Oid def_relid);
extern bool SecurityMayRead(Oid def_relid, Oid userid, const char *view_name);
extern void SecurityCheckRowSecurity(Oid source_relid, Oid owner, const char *view_name);

#endif							/* FLOWSTATE_SECURITY_H */
