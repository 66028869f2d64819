/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The flowstate launcher and what backends ask of it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_LAUNCHER_H
#define FLOWSTATE_LAUNCHER_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"

extern void LauncherRegister(void);

extern void LauncherRequestManager(Oid dboid);
extern void LauncherWakeManager(Oid dboid);
extern void LauncherViewsChanged(Oid dboid);
extern Latch *LauncherDecoderLatch(Oid dboid);
extern XLogRecPtr LauncherDecoderDurable(Oid dboid, XLogRecPtr lsn);
extern bool LauncherSourcePaused(Oid dboid, Oid stream);
extern void LauncherWakeAtCommit(void);
extern bool LauncherStreamCaughtUp(Oid dboid, Oid relid, TimestampTz since);
extern void LauncherSuspendDatabase(Oid dboid);
extern void LauncherResumeDatabase(Oid dboid, bool dropped);

#endif							/* FLOWSTATE_LAUNCHER_H */
