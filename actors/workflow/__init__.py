"""The purchase-order thread: one actor per order, its pure rules, its ports, its feeders.

`rules.apply` is the business (no I/O); `PurchaseOrderThread` commits each step through the
`ThreadLedger` port in one transaction; `WorkflowFeeder` hands it what the gateway committed;
`TimerService` fires its durable timers.
"""
