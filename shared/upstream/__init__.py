"""The models' side: public models and their pools (config), the upstream deployments and how
each is reached (upstreams), the HTTP client (client), one upstream call
(call), failover across a pool (relay), what of an answer may reach the client (scrub), streamed
answers (streams), deployment health and breakers in process or in Redis (balancer, health,
health_redis), and which system and deployment own each stored response (owners).

Imports from shared/: the layers below it (up to usage).
"""
