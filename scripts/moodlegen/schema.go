package moodlegen

// schemaSQL creates the generated tables. Types, defaults and index names
// follow what Moodle's XMLDB creates on PostgreSQL (lib/db/install.xml):
// BIGSERIAL ids, int(10) as BIGINT, int(1..4) as SMALLINT, char as VARCHAR,
// text as TEXT. Only a subset of Moodle's tables and, for the wide ones, of
// their columns is generated: the ones a backup, a restore and a staging
// sanitization touch.
const schemaSQL = `
CREATE TABLE mdl_config (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX mdl_conf_nam_uix ON mdl_config (name);

CREATE TABLE mdl_config_plugins (
    id BIGSERIAL PRIMARY KEY,
    plugin VARCHAR(100) NOT NULL DEFAULT 'core',
    name VARCHAR(100) NOT NULL DEFAULT '',
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX mdl_confplug_plunam_uix ON mdl_config_plugins (plugin, name);

CREATE TABLE mdl_user (
    id BIGSERIAL PRIMARY KEY,
    auth VARCHAR(20) NOT NULL DEFAULT 'manual',
    confirmed SMALLINT NOT NULL DEFAULT 0,
    policyagreed SMALLINT NOT NULL DEFAULT 0,
    deleted SMALLINT NOT NULL DEFAULT 0,
    suspended SMALLINT NOT NULL DEFAULT 0,
    mnethostid BIGINT NOT NULL DEFAULT 0,
    username VARCHAR(100) NOT NULL DEFAULT '',
    password VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(255) NOT NULL DEFAULT '',
    firstname VARCHAR(100) NOT NULL DEFAULT '',
    lastname VARCHAR(100) NOT NULL DEFAULT '',
    email VARCHAR(100) NOT NULL DEFAULT '',
    emailstop SMALLINT NOT NULL DEFAULT 0,
    phone1 VARCHAR(20) NOT NULL DEFAULT '',
    phone2 VARCHAR(20) NOT NULL DEFAULT '',
    institution VARCHAR(255) NOT NULL DEFAULT '',
    department VARCHAR(255) NOT NULL DEFAULT '',
    address VARCHAR(255) NOT NULL DEFAULT '',
    city VARCHAR(120) NOT NULL DEFAULT '',
    country VARCHAR(2) NOT NULL DEFAULT '',
    lang VARCHAR(30) NOT NULL DEFAULT 'en',
    calendartype VARCHAR(30) NOT NULL DEFAULT 'gregorian',
    theme VARCHAR(50) NOT NULL DEFAULT '',
    timezone VARCHAR(100) NOT NULL DEFAULT '99',
    firstaccess BIGINT NOT NULL DEFAULT 0,
    lastaccess BIGINT NOT NULL DEFAULT 0,
    lastlogin BIGINT NOT NULL DEFAULT 0,
    currentlogin BIGINT NOT NULL DEFAULT 0,
    lastip VARCHAR(45) NOT NULL DEFAULT '',
    secret VARCHAR(15) NOT NULL DEFAULT '',
    picture BIGINT NOT NULL DEFAULT 0,
    description TEXT,
    descriptionformat SMALLINT NOT NULL DEFAULT 1,
    mailformat SMALLINT NOT NULL DEFAULT 1,
    maildigest SMALLINT NOT NULL DEFAULT 0,
    maildisplay SMALLINT NOT NULL DEFAULT 2,
    autosubscribe SMALLINT NOT NULL DEFAULT 1,
    trackforums SMALLINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    trustbitmask BIGINT NOT NULL DEFAULT 0,
    imagealt VARCHAR(255),
    lastnamephonetic VARCHAR(255),
    firstnamephonetic VARCHAR(255),
    middlename VARCHAR(255),
    alternatename VARCHAR(255),
    moodlenetprofile VARCHAR(255)
);
CREATE UNIQUE INDEX mdl_user_mneuse_uix ON mdl_user (mnethostid, username);
CREATE INDEX mdl_user_del_ix ON mdl_user (deleted);
CREATE INDEX mdl_user_ema_ix ON mdl_user (email);
CREATE INDEX mdl_user_las_ix ON mdl_user (lastaccess);

CREATE TABLE mdl_course (
    id BIGSERIAL PRIMARY KEY,
    category BIGINT NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL DEFAULT 0,
    fullname VARCHAR(1333) NOT NULL DEFAULT '',
    shortname VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(100) NOT NULL DEFAULT '',
    summary TEXT,
    summaryformat SMALLINT NOT NULL DEFAULT 0,
    format VARCHAR(21) NOT NULL DEFAULT 'topics',
    showgrades SMALLINT NOT NULL DEFAULT 1,
    newsitems INTEGER NOT NULL DEFAULT 1,
    startdate BIGINT NOT NULL DEFAULT 0,
    enddate BIGINT NOT NULL DEFAULT 0,
    relativedatesmode SMALLINT NOT NULL DEFAULT 0,
    marker BIGINT NOT NULL DEFAULT 0,
    maxbytes BIGINT NOT NULL DEFAULT 0,
    legacyfiles SMALLINT NOT NULL DEFAULT 0,
    showreports SMALLINT NOT NULL DEFAULT 0,
    visible SMALLINT NOT NULL DEFAULT 1,
    visibleold SMALLINT NOT NULL DEFAULT 1,
    downloadcontent SMALLINT,
    groupmode SMALLINT NOT NULL DEFAULT 0,
    groupmodeforce SMALLINT NOT NULL DEFAULT 0,
    defaultgroupingid BIGINT NOT NULL DEFAULT 0,
    lang VARCHAR(30) NOT NULL DEFAULT '',
    calendartype VARCHAR(30) NOT NULL DEFAULT '',
    theme VARCHAR(50) NOT NULL DEFAULT '',
    timecreated BIGINT NOT NULL DEFAULT 0,
    timemodified BIGINT NOT NULL DEFAULT 0,
    requested SMALLINT NOT NULL DEFAULT 0,
    enablecompletion SMALLINT NOT NULL DEFAULT 0,
    completionnotify SMALLINT NOT NULL DEFAULT 0,
    cacherev BIGINT NOT NULL DEFAULT 0,
    originalcourseid BIGINT,
    showactivitydates SMALLINT NOT NULL DEFAULT 0,
    showcompletionconditions SMALLINT,
    pdfexportfont VARCHAR(50)
);
CREATE INDEX mdl_cour_cat_ix ON mdl_course (category);
CREATE INDEX mdl_cour_idn_ix ON mdl_course (idnumber);
CREATE INDEX mdl_cour_sho_ix ON mdl_course (shortname);

CREATE TABLE mdl_files (
    id BIGSERIAL PRIMARY KEY,
    contenthash VARCHAR(40) NOT NULL DEFAULT '',
    pathnamehash VARCHAR(40) NOT NULL DEFAULT '',
    contextid BIGINT NOT NULL,
    component VARCHAR(100) NOT NULL DEFAULT '',
    filearea VARCHAR(50) NOT NULL DEFAULT '',
    itemid BIGINT NOT NULL,
    filepath VARCHAR(255) NOT NULL DEFAULT '',
    filename VARCHAR(255) NOT NULL DEFAULT '',
    userid BIGINT,
    filesize BIGINT NOT NULL,
    mimetype VARCHAR(100),
    status BIGINT NOT NULL DEFAULT 0,
    source TEXT,
    author VARCHAR(255),
    license VARCHAR(255),
    timecreated BIGINT NOT NULL,
    timemodified BIGINT NOT NULL,
    sortorder BIGINT NOT NULL DEFAULT 0,
    referencefileid BIGINT
);
CREATE UNIQUE INDEX mdl_file_pat_uix ON mdl_files (pathnamehash);
CREATE INDEX mdl_file_comfilconite_ix ON mdl_files (component, filearea, contextid, itemid);
CREATE INDEX mdl_file_con_ix ON mdl_files (contenthash);
CREATE INDEX mdl_file_con2_ix ON mdl_files (contextid);
CREATE INDEX mdl_file_use_ix ON mdl_files (userid);
CREATE INDEX mdl_file_ref_ix ON mdl_files (referencefileid);

CREATE TABLE mdl_task_scheduled (
    id BIGSERIAL PRIMARY KEY,
    component VARCHAR(255) NOT NULL DEFAULT '',
    classname VARCHAR(255) NOT NULL DEFAULT '',
    lastruntime BIGINT,
    nextruntime BIGINT,
    blocking SMALLINT NOT NULL DEFAULT 0,
    minute VARCHAR(200) NOT NULL DEFAULT '',
    hour VARCHAR(70) NOT NULL DEFAULT '',
    day VARCHAR(90) NOT NULL DEFAULT '',
    month VARCHAR(30) NOT NULL DEFAULT '',
    dayofweek VARCHAR(25) NOT NULL DEFAULT '',
    faildelay BIGINT,
    customised SMALLINT NOT NULL DEFAULT 0,
    disabled SMALLINT NOT NULL DEFAULT 0,
    timestarted BIGINT,
    hostname VARCHAR(255),
    pid BIGINT
);
CREATE UNIQUE INDEX mdl_tasksche_cla_uix ON mdl_task_scheduled (classname);

CREATE TABLE mdl_task_adhoc (
    id BIGSERIAL PRIMARY KEY,
    component VARCHAR(255) NOT NULL DEFAULT '',
    classname VARCHAR(255) NOT NULL DEFAULT '',
    nextruntime BIGINT NOT NULL,
    faildelay BIGINT,
    customdata TEXT,
    userid BIGINT,
    blocking SMALLINT NOT NULL DEFAULT 0,
    timecreated BIGINT NOT NULL DEFAULT 0,
    timestarted BIGINT,
    hostname VARCHAR(255),
    pid BIGINT
);
CREATE INDEX mdl_taskadho_nex_ix ON mdl_task_adhoc (nextruntime);

CREATE TABLE mdl_sessions (
    id BIGSERIAL PRIMARY KEY,
    state BIGINT NOT NULL DEFAULT 0,
    sid VARCHAR(128) NOT NULL DEFAULT '',
    userid BIGINT NOT NULL,
    sessdata TEXT,
    timecreated BIGINT NOT NULL,
    timemodified BIGINT NOT NULL,
    firstip VARCHAR(45),
    lastip VARCHAR(45)
);
CREATE UNIQUE INDEX mdl_sess_sid_uix ON mdl_sessions (sid);
CREATE INDEX mdl_sess_sta_ix ON mdl_sessions (state);
CREATE INDEX mdl_sess_tim_ix ON mdl_sessions (timecreated);
CREATE INDEX mdl_sess_use_ix ON mdl_sessions (userid);

CREATE TABLE mdl_external_services (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(200) NOT NULL DEFAULT '',
    enabled SMALLINT NOT NULL DEFAULT 0,
    requiredcapability VARCHAR(150),
    restrictedusers SMALLINT NOT NULL DEFAULT 0,
    component VARCHAR(100),
    timecreated BIGINT NOT NULL,
    timemodified BIGINT,
    shortname VARCHAR(255),
    downloadfiles SMALLINT NOT NULL DEFAULT 0,
    uploadfiles SMALLINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX mdl_exteserv_nam_uix ON mdl_external_services (name);

CREATE TABLE mdl_external_tokens (
    id BIGSERIAL PRIMARY KEY,
    token VARCHAR(128) NOT NULL DEFAULT '',
    privatetoken VARCHAR(64),
    tokentype SMALLINT NOT NULL DEFAULT 0,
    userid BIGINT NOT NULL,
    externalserviceid BIGINT NOT NULL,
    sid VARCHAR(128),
    contextid BIGINT NOT NULL,
    creatorid BIGINT NOT NULL DEFAULT 1,
    iprestriction VARCHAR(255),
    validuntil BIGINT,
    timecreated BIGINT NOT NULL,
    lastaccess BIGINT,
    name VARCHAR(255)
);
CREATE INDEX mdl_exteoken_tok_ix ON mdl_external_tokens (token);

CREATE TABLE mdl_user_private_key (
    id BIGSERIAL PRIMARY KEY,
    script VARCHAR(128) NOT NULL DEFAULT '',
    value VARCHAR(128) NOT NULL DEFAULT '',
    userid BIGINT NOT NULL,
    instance BIGINT,
    iprestriction VARCHAR(255),
    validuntil BIGINT,
    timecreated BIGINT
);
CREATE INDEX mdl_userprivkey_scrval_ix ON mdl_user_private_key (script, value);

CREATE TABLE mdl_message_processors (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(166) NOT NULL DEFAULT '',
    enabled SMALLINT NOT NULL DEFAULT 1
);

CREATE TABLE mdl_oauth2_issuer (
    id BIGSERIAL PRIMARY KEY,
    timecreated BIGINT NOT NULL,
    timemodified BIGINT NOT NULL,
    usermodified BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    image TEXT NOT NULL,
    baseurl TEXT NOT NULL,
    clientid TEXT NOT NULL,
    clientsecret TEXT NOT NULL,
    loginscopes TEXT NOT NULL,
    loginscopesoffline TEXT NOT NULL,
    loginparams TEXT NOT NULL,
    loginparamsoffline TEXT NOT NULL,
    alloweddomains TEXT NOT NULL,
    scopessupported TEXT,
    enabled SMALLINT NOT NULL DEFAULT 1,
    showonloginpage SMALLINT NOT NULL DEFAULT 1,
    basicauth SMALLINT NOT NULL DEFAULT 0,
    sortorder BIGINT NOT NULL,
    requireconfirmation SMALLINT NOT NULL DEFAULT 1,
    servicetype VARCHAR(255),
    loginpagename VARCHAR(255)
);

CREATE TABLE mdl_payment_accounts (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL DEFAULT '',
    idnumber VARCHAR(100),
    contextid BIGINT NOT NULL,
    enabled SMALLINT NOT NULL DEFAULT 0,
    archived SMALLINT NOT NULL DEFAULT 0,
    timecreated BIGINT,
    timemodified BIGINT
);

CREATE TABLE mdl_payment_gateways (
    id BIGSERIAL PRIMARY KEY,
    accountid BIGINT NOT NULL,
    gateway VARCHAR(100) NOT NULL DEFAULT '',
    enabled SMALLINT NOT NULL DEFAULT 1,
    config TEXT,
    timecreated BIGINT NOT NULL,
    timemodified BIGINT NOT NULL
);

CREATE TABLE mdl_logstore_standard_log (
    id BIGSERIAL PRIMARY KEY,
    eventname VARCHAR(255) NOT NULL DEFAULT '',
    component VARCHAR(100) NOT NULL DEFAULT '',
    action VARCHAR(100) NOT NULL DEFAULT '',
    target VARCHAR(100) NOT NULL DEFAULT '',
    objecttable VARCHAR(50),
    objectid BIGINT,
    crud VARCHAR(1) NOT NULL DEFAULT '',
    edulevel SMALLINT NOT NULL,
    contextid BIGINT NOT NULL,
    contextlevel BIGINT NOT NULL,
    contextinstanceid BIGINT NOT NULL,
    userid BIGINT NOT NULL,
    courseid BIGINT,
    relateduserid BIGINT,
    anonymous SMALLINT NOT NULL DEFAULT 0,
    other TEXT,
    timecreated BIGINT NOT NULL,
    origin VARCHAR(10),
    ip VARCHAR(45),
    realuserid BIGINT
);
`

// logIndexesSQL is run after the log table is loaded: building the
// secondary indexes once is much faster than maintaining them row by row.
const logIndexesSQL = `
CREATE INDEX mdl_logsstanlog_tim_ix ON mdl_logstore_standard_log (timecreated);
CREATE INDEX mdl_logsstanlog_couanotim_ix ON mdl_logstore_standard_log (courseid, anonymous, timecreated);
CREATE INDEX mdl_logsstanlog_useconconcrue_ix ON mdl_logstore_standard_log (userid, contextlevel, contextinstanceid, crud, edulevel, timecreated);
CREATE INDEX mdl_logsstanlog_con_ix ON mdl_logstore_standard_log (contextid);
`

// generatedTables lists every table schemaSQL creates; each has an id
// BIGSERIAL whose sequence is advanced past the loaded ids.
var generatedTables = []string{
	"mdl_config", "mdl_config_plugins", "mdl_user", "mdl_course", "mdl_files",
	"mdl_task_scheduled", "mdl_task_adhoc", "mdl_sessions", "mdl_external_services",
	"mdl_external_tokens", "mdl_user_private_key", "mdl_message_processors",
	"mdl_oauth2_issuer", "mdl_payment_accounts", "mdl_payment_gateways",
	"mdl_logstore_standard_log",
}
