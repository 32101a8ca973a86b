//! Tenants: bootstrap and recovery.

use crate::actions::keys::{insert_key, new_key, KeyRequest};
use crate::audit::{self, Record, System};
use crate::core::{new_id, now};
use crate::store;
use crate::{Core, CoreError, Role};

impl Core {
    /// Creates a tenant and its first admin key; the key is returned once and stored only as
    /// its SHA-256 (keys are 256 random bits, so a fast hash is enough).
    pub async fn bootstrap_tenant(&self, name: &str) -> Result<(String, String), CoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(CoreError::Invalid(
                "tenant name must be 1 to 200 characters".into(),
            ));
        }
        let tenant = new_id();
        let key = new_key();
        let mut tx = self.db.begin_write().await?;
        if store::tenants::id_by_name(&mut tx, name).await?.is_some() {
            return Err(CoreError::AlreadyExists("a tenant with that name"));
        }
        store::tenants::insert(&mut tx, &tenant, name, "epochs", now()).await?;
        let id = insert_key(&mut tx, &tenant, &KeyRequest::role(Role::Admin), &key).await?;
        let r = Record::ok("tenant.create", Some(&tenant));
        audit::record_system(&mut tx, &tenant, System::Cli, r).await?;
        let r = Record::ok("key.create", Some(&id)).detail("role=admin".into());
        audit::record_system(&mut tx, &tenant, System::Cli, r).await?;
        tx.commit().await?;
        Ok((tenant, key))
    }

    /// The id of the tenant named `name`, if there is one.
    pub async fn tenant_id(&self, name: &str) -> Result<Option<String>, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        Ok(store::tenants::id_by_name(&mut c, name.trim()).await?)
    }

    /// For the demo and for recovery on the server's own machine: returns a new admin key for
    /// the tenant named `name`, creating the tenant when it does not exist.
    pub async fn admin_key_for(&self, name: &str) -> Result<(String, String), CoreError> {
        let existing =
            store::tenants::id_by_name(&mut *self.db.pool().acquire().await?, name.trim()).await?;
        let Some(tenant) = existing else {
            return self.bootstrap_tenant(name).await;
        };
        let key = new_key();
        let mut tx = self.db.begin_write().await?;
        let id = insert_key(&mut tx, &tenant, &KeyRequest::role(Role::Admin), &key).await?;
        let r = Record::ok("key.create", Some(&id)).detail("role=admin".into());
        audit::record_system(&mut tx, &tenant, System::Cli, r).await?;
        tx.commit().await?;
        Ok((tenant, key))
    }
}
