//! Kamal's hand-written validation rules, turning the raw mirror into the validated Config.
