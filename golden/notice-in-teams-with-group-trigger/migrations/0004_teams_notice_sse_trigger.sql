-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Notice events of the teams module (/teams/events/notice/stream), from notices:
-- notice_created, _updated and _deleted, to the members of the group in each changed row's team_id, carrying every column of notices.
SELECT fastapi_pg_sse.create_trigger(
    'teams_notice', 'notices', group_column => 'team_id', event_prefix => 'notice'
);
