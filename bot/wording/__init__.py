"""Every sentence a member or moderator reads."""
